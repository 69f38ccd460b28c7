"""Figures. Every function takes ``ax=None``, draws only on that Axes and returns it."""

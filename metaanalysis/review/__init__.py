"""From results to a submission: Table 1, PRISMA 2020 counts, risk of bias, GRADE.

Pure computations (no matplotlib, no files): the figure layer draws them
(:mod:`metaanalysis.plots.prisma`, :mod:`metaanalysis.plots.rob`) and the report
writes them (:mod:`metaanalysis.report.submission`).
"""

"""Command line: ``metaanalysis check`` and ``metaanalysis report``.

Bad input exits with status 2 and one line per problem (``FILE: record/field: message``)
on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from metaanalysis.errors import MetaAnalysisError, StudyFileError, one_line


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {text!r}; expected a whole number of processes, "
                                         "at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    from metaanalysis import __version__

    p = argparse.ArgumentParser(prog="metaanalysis", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"metaanalysis {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check the study records for impossible or inconsistent values")
    c.add_argument("studies", nargs="?", default="studies", help="folder of study YAML files")
    r = sub.add_parser("report", help="run the analysis plan and write tables and figures")
    r.add_argument("studies", nargs="?", default="studies", help="folder of study YAML files")
    r.add_argument("--plan", default=None, help="analysis plan YAML (default: STUDIES/plan.yaml)")
    r.add_argument("--out", default="figures", help="output folder (default: figures/)")
    r.add_argument("--quiet", action="store_true",
                   help="no progress on stderr (default: a progress bar on a terminal, one line "
                   "per step otherwise)")
    r.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                   help="draw the figures in N processes (the output is identical to --jobs 1)")
    return p


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on stderr as one line each, without the source line of the code that
    raised them: ``metaanalysis: warning (LayoutWarning): ...``."""
    print(one_line(f"metaanalysis: warning ({category.__name__}): {message}"),
          file=sys.stderr if file is None else file)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _run(args)


def _run(args) -> int:
    try:
        if args.command == "check":
            from metaanalysis.records.checks import run_check_command

            return run_check_command(args.studies)
        from metaanalysis.report.run import run_report_command

        return run_report_command(args.studies, plan=args.plan, out=args.out, quiet=args.quiet,
                                  jobs=args.jobs)
    except StudyFileError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    except (MetaAnalysisError, OSError) as err:
        print(one_line(f"metaanalysis: {err}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("metaanalysis: interrupted; the output folder was left as it was", file=sys.stderr)
        return 130
    except (MemoryError, RecursionError) as err:
        print(f"metaanalysis: the input needs more resources than allowed "
              f"({type(err).__name__}); expected study files within the limits of "
              "docs/study_records.md", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - no traceback for users; METAANALYSIS_DEBUG=1 shows it
        if os.environ.get("METAANALYSIS_DEBUG"):
            raise
        print(one_line(f"metaanalysis: internal error ({type(err).__name__}: {err}); please "
                       "report it with the input that caused it (METAANALYSIS_DEBUG=1 shows "
                       "the traceback)"), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

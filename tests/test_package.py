"""The package surface: lazy, light import; every public name resolves; API.md names exist."""

import subprocess
import sys

import metaanalysis as ma


def test_import_is_light_and_never_imports_matplotlib():
    # `import metaanalysis` must stay well under a second: it imports nothing heavy at all.
    code = (
        "import sys, metaanalysis; "
        "heavy = [m for m in ('matplotlib', 'pandas', 'scipy', 'statsmodels', 'numpy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_computing_does_not_import_matplotlib():
    code = (
        "import sys, metaanalysis as ma; ma.pool([0.1, 0.3, 0.2], [0.01, 0.02, 0.03]); "
        "ma.effect_sizes('PLO', events=[1, 2], total=[91, 69]); "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_exported_name_resolves():
    for name in ma.__all__:
        assert getattr(ma, name) is not None, name


def test_api_contract_names_exist():
    # /work/shared/API.md: the public names tests, notebooks and scripts rely on
    for name in ("effect_sizes", "estimate_mean_sd", "pool", "pool_many", "pool_glmm", "pool_bayes",
                 "egger_test", "begg_test", "trim_and_fill", "fail_safe_n", "leave_one_out",
                 "cumulative", "influence", "meta_regression", "subgroups", "forest", "funnel",
                 "load_studies", "PoolResult", "BatchResult", "BayesResult"):
        assert callable(getattr(ma, name)), name
    assert ma.__version__

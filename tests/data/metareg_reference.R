# Reference values for tests/test_metareg_reference.py: meta-regression with every
# tau^2 estimator and every test, computed with R metafor's rma.uni(mods = ...).
# Run from the repository root:
#   Rscript tests/data/metareg_reference.R
# Writes tests/data/metareg_reference.json.
#
# Cases: dat.bcg (log risk ratios) with ablat; with ablat + year (p = 3); with the
# three-level categorical alloc (treatment coding, first level the reference);
# dat.raudenbush1985 (standardised mean differences) with weeks; dat.molloy2014
# (Fisher z) with meanage.  For each (method, test): coefficients, SEs, test
# statistics, p-values, CIs, tau^2 and its SE, QE, QM, I^2, H^2, R^2, predictions
# at new moderator values and the Q-profile CI (confint) of tau^2, I^2 and H^2.
# Iterations tightened (threshold, tol 1e-12) so iterative values are converged
# far beyond metafor's defaults.
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
methods <- c("EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM")
tests <- c("z", "knha", "adhoc")
num <- function(x) if (is.null(x) || length(x) == 0) NULL else unname(as.numeric(x))

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
rau <- dat.raudenbush1985
mol <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014)

cases <- list(
  list(name = "bcg_ablat", dat = bcg, mods = ~ ablat, newmods = cbind(c(10, 30, 55))),
  list(name = "bcg_ablat_year", dat = bcg, mods = ~ ablat + year,
       newmods = rbind(c(20, 1950), c(40, 1970), c(55, 1980))),
  list(name = "bcg_alloc", dat = bcg, mods = ~ factor(alloc),
       newmods = rbind(c(0, 0), c(1, 0), c(0, 1))),
  list(name = "raudenbush_weeks", dat = rau, mods = ~ weeks, newmods = cbind(c(0, 1, 3, 10))),
  list(name = "molloy_meanage", dat = mol, mods = ~ meanage, newmods = cbind(c(20, 40, 60)))
)

fit_block <- function(dat, mods, method, test, newmods) {
  res <- try(suppressWarnings(rma(yi, vi, mods = mods, data = dat, method = method,
                                  test = test, control = ctrl)), silent = TRUE)
  if (inherits(res, "try-error")) return(list(method = method, test = test, error = TRUE))
  b <- list(method = method, test = test, k = res$k, p = res$p,
            beta = num(res$beta), se = num(res$se), stat = num(res$zval),
            pval = num(res$pval), ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub),
            tau2 = num(res$tau2), se_tau2 = num(res$se.tau2), qe = num(res$QE),
            qe_p = num(res$QEp), qm = num(res$QM), qm_p = num(res$QMp),
            qm_df = num(res$QMdf[1]), qm_df2 = num(res$QMdf[2]),
            i2 = num(res$I2), h2 = num(res$H2), r2 = num(res$R2),
            vb = as.vector(res$vb))
  pr <- predict(res, newmods = newmods)
  b$pred <- list(pred = num(pr$pred), se = num(pr$se), ci_lb = num(pr$ci.lb),
                 ci_ub = num(pr$ci.ub), pi_lb = num(pr$pi.lb), pi_ub = num(pr$pi.ub))
  if (method != "EE") {
    ci <- try(confint(res, control = list(tol = 1e-12)), silent = TRUE)
    if (!inherits(ci, "try-error")) {
      r <- ci$random
      b$tau2_ci_lb <- num(r["tau^2", "ci.lb"]); b$tau2_ci_ub <- num(r["tau^2", "ci.ub"])
      b$i2_ci_lb <- num(r["I^2(%)", "ci.lb"]); b$i2_ci_ub <- num(r["I^2(%)", "ci.ub"])
      b$h2_ci_lb <- num(r["H^2", "ci.lb"]); b$h2_ci_ub <- num(r["H^2", "ci.ub"])
    }
  }
  b
}

out <- list(generator = sprintf("R %s, metafor %s, metadat %s; rma control threshold=1e-12, tol=1e-12; confint tol=1e-12",
                                paste(R.version$major, R.version$minor, sep = "."),
                                as.character(packageVersion("metafor")),
                                as.character(packageVersion("metadat"))),
            cases = list())
for (cs in cases) {
  X <- model.matrix(cs$mods, data = cs$dat)
  blk <- list(name = cs$name, yi = as.numeric(cs$dat$yi), vi = as.numeric(cs$dat$vi),
              X = unname(lapply(seq_len(nrow(X)), function(i) as.numeric(X[i, ]))),
              colnames = colnames(X),
              newmods = unname(lapply(seq_len(nrow(cs$newmods)),
                                      function(i) as.numeric(cs$newmods[i, ]))),
              fits = list())
  for (m in methods) for (t in tests) blk$fits[[length(blk$fits) + 1]] <- fit_block(cs$dat, cs$mods, m, t, cs$newmods)
  out$cases[[length(out$cases) + 1]] <- blk
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null"),
           "tests/data/metareg_reference.json")

# Extra reference values for tests/test_regression.py and tests/test_bias.py.
# Run from the repository root:  Rscript tests/data/bias_regression_extra.R
# Writes tests/data/bias_regression_extra.json.  Generated with R 4.2.2 and
# metafor 3.8-1 (Debian packages r-base-core, r-cran-metafor, r-cran-metadat).
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
dat$alloc <- as.character(dat$alloc)
out <- list(generator = sprintf("%s, metafor %s", R.version.string, packageVersion("metafor")),
            bcg = list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi), ablat = dat$ablat,
                       year = dat$year, alloc = dat$alloc))
reg <- function(fit) list(
  beta = as.numeric(coef(fit)), se = as.numeric(fit$se), stat = as.numeric(fit$zval),
  p = as.numeric(fit$pval), ci_lb = as.numeric(fit$ci.lb), ci_ub = as.numeric(fit$ci.ub),
  tau2 = fit$tau2, qm = fit$QM, qm_df = fit$QMdf[1], qm_df2 = fit$QMdf[2], qm_p = fit$QMp,
  qe = fit$QE, qe_p = fit$QEp, i2 = fit$I2, h2 = fit$H2,
  r2 = if (is.null(fit$R2)) NA else fit$R2, names = rownames(fit$beta))
# meta-regression on latitude with each estimator and test
for (m in c("REML", "ML", "DL", "HE", "PM", "EE")) for (tst in c("z", "knha")) {
  fit <- rma(yi, vi, mods = ~ ablat, data = dat, method = m, test = tst, control = ctrl)
  out[[sprintf("metareg_ablat_%s_%s", m, tst)]] <- reg(fit)
}
# categorical moderator (dummy coding, first level = reference) plus a numeric one
for (tst in c("z", "knha")) {
  fit <- rma(yi, vi, mods = ~ ablat + factor(alloc), data = dat, method = "REML", test = tst,
             control = ctrl)
  out[[sprintf("metareg_ablat_alloc_%s", tst)]] <- reg(fit)
}
# subgroups with a common tau2: model without intercept (cell means) and with (QM)
for (tst in c("z", "knha")) {
  f0 <- rma(yi, vi, mods = ~ factor(alloc) - 1, data = dat, method = "REML", test = tst, control = ctrl)
  f1 <- rma(yi, vi, mods = ~ factor(alloc), data = dat, method = "REML", test = tst, control = ctrl)
  out[[sprintf("subgroups_common_%s", tst)]] <- list(
    estimate = as.numeric(coef(f0)), se = as.numeric(f0$se), ci_lb = as.numeric(f0$ci.lb),
    ci_ub = as.numeric(f0$ci.ub), tau2 = f1$tau2, q_between = f1$QM,
    q_between_df = f1$QMdf[1], q_between_p = f1$QMp)
}
# bias tests on other models
for (m in c("DL", "EE")) for (tst in c("z", "knha")) {
  fit <- rma(yi, vi, data = dat, method = m, test = tst, control = ctrl)
  rt <- regtest(fit, model = "rma", predictor = "sei")
  out[[sprintf("egger_rma_%s_%s", m, tst)]] <- list(stat = rt$zval, p = rt$pval,
    df = if (is.null(rt$dfs)) NA else rt$dfs, limit_estimate = rt$est)
}
fit <- rma(yi, vi, data = dat, method = "REML", control = ctrl)
pe <- regtest(fit, model = "lm", predictor = "vi")
out$peese_lm <- list(stat = pe$zval, p = pe$pval, df = pe$dfs, limit_estimate = pe$est,
                     limit_ci_lb = pe$ci.lb, limit_ci_ub = pe$ci.ub)
pr <- regtest(fit, model = "rma", predictor = "vi")
out$peese_rma <- list(stat = pr$zval, p = pr$pval, limit_estimate = pr$est)
for (m in c("DL", "EE")) {
  fit <- rma(yi, vi, data = dat, method = m, control = ctrl)
  tf <- trimfill(fit, estimator = "R0")
  out[[sprintf("trimfill_r0_%s", m)]] <- list(k0 = tf$k0, side = tf$side,
    estimate = as.numeric(coef(tf)), se = tf$se, tau2 = tf$tau2)
  tf <- trimfill(fit, side = "left")
  out[[sprintf("trimfill_left_%s", m)]] <- list(k0 = tf$k0, side = tf$side,
    estimate = as.numeric(coef(tf)), se = tf$se, tau2 = tf$tau2)
}
out$fsn_orwin <- fsn(yi, vi, data = dat, type = "Orwin")$fsnum
out$fsn_orwin_target <- fsn(yi, vi, data = dat, type = "Orwin", target = log(0.95))$fsnum
out$fsn_orwin_weighted <- fsn(yi, vi, data = dat, type = "Orwin", weighted = TRUE,
                              target = log(0.95))$fsnum
out$fsn_rosenthal_a01 <- fsn(yi, vi, data = dat, alpha = 0.01)$fsnum
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           "tests/data/bias_regression_extra.json")

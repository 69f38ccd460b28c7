# Reference values for tests/test_global_max.py: ML/REML on likelihoods with
# several maxima, computed with R metafor (rma, Fisher scoring).
# Run from the repository root:
#   Rscript tests/data/global_max_reference.R
# Writes tests/data/global_max_reference.json.
#
# "gibson4": four studies (a cumulative step of dat.gibson2002, values as in
# issue 12).  The restricted likelihood has two interior maxima, at about 0.54
# and at 25.80; metafor's default start (the Hedges estimate) reaches the
# global one, a start at 0.5 the lower one; both are recorded with their
# restricted log-likelihoods (metafor's logLik, constants included).
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
out <- list(generator = sprintf("R %s, metafor %s; rma control threshold=1e-12, tol=1e-12",
                                paste(R.version$major, R.version$minor, sep = "."),
                                as.character(packageVersion("metafor"))))
yi <- c(0.26, -0.90, 0.52, -15.08)
vi <- c(0.040, 0.489, 1.985, 20.87)
blk <- list(yi = yi, vi = vi)
for (m in c("REML", "ML")) {
  fit <- rma(yi, vi, method = m, control = ctrl)
  loc <- rma(yi, vi, method = m, control = c(ctrl, list(tau2.init = 0.5)))
  blk[[m]] <- list(tau2 = fit$tau2, loglik = as.numeric(logLik(fit)),
                   estimate = as.numeric(fit$beta), se = fit$se, se_tau2 = fit$se.tau2,
                   tau2_local = loc$tau2, loglik_local = as.numeric(logLik(loc)))
}
out$gibson4 <- blk
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/data/global_max_reference.json")

# Reference values for metaanalysis.proportions.pool_glmm (binomial-normal GLMM).
#
# Run from the repository root:  Rscript tests/data/proportions_glmm.R
# Writes tests/data/proportions_glmm.json.  Produced with R 4.2.2, metafor 3.8-1,
# lme4 (Debian packages r-cran-metafor, r-cran-lme4).
#
# For each case: rma.glmm(measure = "PLO") with metafor's defaults (glmer, nAGQ = 7),
# plus the same fit with nAGQ = 25 (lme4's maximum, near-exact ML) for the estimate,
# SE and tau^2; heterogeneity tests (Wald and LRT), I^2, H^2 and predict().
suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
  library(jsonlite)
})

cases <- list(
  pritz1997 = data.frame(xi = dat.pritz1997$xi, ni = dat.pritz1997$ni),
  cement_leakage = data.frame(xi = c(42, 32, 37, 10), ni = c(140, 115, 85, 33)),
  complications_k2 = data.frame(xi = c(1, 2), ni = c(91, 69)),
  # khan2018 59/61 (no locoregional progression), liu2023 MWA+PVP arm 26/28 (2/28 progressed)
  local_control = data.frame(xi = c(59, 26), ni = c(61, 28)),
  # chen2022 1/91, khan2018 2/69, jvir2014 0/17, zhang2024 2/67
  complications_zero = data.frame(xi = c(1, 2, 0, 2), ni = c(91, 69, 17, 67)),
  # synthetic: all-event studies and heterogeneity
  all_events = data.frame(xi = c(10, 12, 20, 15, 30), ni = c(10, 12, 21, 18, 40)),
  zero_and_hetero = data.frame(xi = c(0, 5, 1, 12, 3), ni = c(20, 30, 50, 40, 25))
)

num <- function(x) if (is.null(x) || length(x) == 0 || is.na(x)) NULL else unname(as.numeric(x))

out <- list(generator = paste0(R.version.string, "; metafor ", packageVersion("metafor"),
                               "; lme4 ", packageVersion("lme4")))
for (nm in names(cases)) {
  d <- cases[[nm]]
  r <- rma.glmm(measure = "PLO", xi = xi, ni = ni, data = d)
  p <- predict(r)
  r25 <- rma.glmm(measure = "PLO", xi = xi, ni = ni, data = d, nAGQ = 25)
  out[[nm]] <- list(
    xi = d$xi, ni = d$ni, k = r$k,
    estimate = num(r$beta), se = num(r$se), stat = num(r$zval), p = num(r$pval),
    ci_lb = num(r$ci.lb), ci_ub = num(r$ci.ub),
    pi_lb = num(p$pi.lb), pi_ub = num(p$pi.ub),
    tau2 = num(r$tau2), i2 = num(r$I2), h2 = num(r$H2),
    q_wald = num(r$QE.Wld), q_wald_p = num(r$QEp.Wld),
    q_lrt = num(r$QE.LRT), q_lrt_p = num(r$QEp.LRT), q_df = r$k - 1,
    loglik = num(logLik(r)),
    nAGQ25 = list(estimate = num(r25$beta), se = num(r25$se), tau2 = num(r25$tau2),
                  loglik = num(logLik(r25)))
  )
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           "tests/data/proportions_glmm.json")

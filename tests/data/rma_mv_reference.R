# Reference values for tests/test_multilevel*.py: multilevel and multivariate
# models fitted with metafor's rma.mv, robust() and clubSandwich.
# Run from the repository root:
#   Rscript tests/data/rma_mv_reference.R
# Writes tests/data/rma_mv_reference.json (R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8).
#
# Data sets: dat.konstantopoulos2011 (three-level), dat.ishak2007 (repeated
# measures, long format), dat.berkey1998 (multivariate, given V) from metadat,
# and a synthetic pain data set with five time points generated below with a
# fixed seed (its values are written to the JSON, so the tests never need R).
suppressPackageStartupMessages({
  library(metafor); library(clubSandwich); library(jsonlite)
})
ctrl <- list(rel.tol = 1e-10, eval.max = 10000, iter.max = 10000)
out <- list(generator = sprintf(
  "R %s.%s, metafor %s, clubSandwich %s; rma.mv optimizer nlminb, rel.tol=1e-10 (UN: also optim BFGS, reltol=1e-15, keeping the higher logLik)",
  R.version$major, R.version$minor, as.character(packageVersion("metafor")),
  as.character(packageVersion("clubSandwich"))))

# ---------------------------------------------------------------- data sets
kon <- dat.konstantopoulos2011
kon$year_c <- kon$year - 1990

ish <- reshape(dat.ishak2007, direction = "long", idvar = "study", v.names = c("yi", "vi"),
               varying = list(c(2, 4, 6, 8), c(3, 5, 7, 9)))
ish <- ish[order(ish$study, ish$time), ]
ish <- ish[!is.na(ish$yi), ]
rownames(ish) <- NULL
ish$study <- as.character(ish$study)

ber <- dat.berkey1998
ber$year_c <- ber$year - 1983
V_ber <- bldiag(lapply(split(ber[, c("v1i", "v2i")], ber$trial), as.matrix))

# synthetic pain relief (VAS 0-10, baseline minus follow-up) at 1 day, 1 week,
# 1, 3 and 6 months; each series reports 2 to 5 of the time points
set.seed(20240516)
days <- c(1, 7, 30, 90, 180)
ns <- 40
rows <- list()
for (s in seq_len(ns)) {
  m <- sample(2:5, 1)
  tt <- sort(sample(days, m))
  n <- sample(20:120, 1)
  u <- rnorm(1, 0, 0.8)
  for (t in tt) {
    mu <- 3.2 + 0.35 * log(t) + u + rnorm(1, 0, 0.35)
    sdc <- runif(1, 1.8, 2.6)
    vi <- sdc^2 / n
    rows[[length(rows) + 1]] <- data.frame(study = sprintf("S%02d", s), days = t, n = n,
                                           yi = round(mu + rnorm(1, 0, sqrt(vi)), 3),
                                           vi = round(vi, 5))
  }
}
pain <- do.call(rbind, rows)
pain$months <- pain$days / 30
pain$logm <- log(pain$months)

out$datasets <- list(
  konstantopoulos2011 = list(yi = kon$yi, vi = kon$vi, district = as.character(kon$district),
                             school = as.character(kon$school), year_c = kon$year_c),
  ishak2007 = list(yi = ish$yi, vi = ish$vi, study = ish$study, time = ish$time),
  berkey1998 = list(yi = ber$yi, vi = ber$vi, trial = as.character(ber$trial),
                    outcome = as.character(ber$outcome), year_c = ber$year_c,
                    V = unname(as.matrix(V_ber))),
  pain5 = list(yi = pain$yi, vi = pain$vi, study = pain$study, days = pain$days,
               months = pain$months, logm = pain$logm, n = pain$n)
)

# vcalc: the sampling covariance built from vi
blocks <- function(V, cluster) {
  lapply(split(seq_along(cluster), factor(cluster, levels = unique(cluster))),
         function(i) unname(as.matrix(V[i, i, drop = FALSE])))
}
V_ish_phi <- vcalc(vi, cluster = study, time1 = time, phi = 0.97, data = ish)
ish$obs <- as.character(ish$time)  # vcalc indexes rho by obs: use labels, not numbers
V_ish_rho <- vcalc(vi, cluster = study, obs = obs, rho = 0.6, data = ish)
V_pain_phi <- vcalc(vi, cluster = study, time1 = months, phi = 0.8, data = pain)
pain$obs <- as.character(pain$days)
V_pain_rho <- vcalc(vi, cluster = study, obs = obs, rho = 0.5, data = pain)
out$vcalc <- list(
  ishak_phi = list(data = "ishak2007", cluster = "study", time = "time", phi = 0.97,
                   blocks = blocks(V_ish_phi, ish$study)),
  ishak_rho = list(data = "ishak2007", cluster = "study", time = "time", rho = 0.6,
                   blocks = blocks(V_ish_rho, ish$study)),
  pain_phi = list(data = "pain5", cluster = "study", time = "months", phi = 0.8,
                  blocks = blocks(V_pain_phi, pain$study)),
  pain_rho = list(data = "pain5", cluster = "study", time = "days", rho = 0.5,
                  blocks = blocks(V_pain_rho, pain$study))
)

# ---------------------------------------------------------------- helpers
fit_block <- function(res) {
  fs <- res$fit.stats
  col <- if (res$method == "REML") "REML" else "ML"
  list(names = rownames(res$beta), estimate = c(res$beta), se = res$se,
       stat = res$zval, p = res$pval, ci_lb = res$ci.lb, ci_ub = res$ci.ub,
       ddf = if (res$test == "t") res$ddf else NULL,
       sigma2 = if (res$withS) res$sigma2 else NULL,
       tau2 = if (res$withG) res$tau2 else NULL,
       rho = if (res$withG) res$rho else NULL,
       QE = res$QE, QEp = res$QEp, QE_df = res$k - res$p,
       QM = res$QM, QMdf = res$QMdf, QMp = res$QMp,
       k = res$k, n_coef = res$p, parms = res$parms,
       ll = fs["ll", col], dev = fs["dev", col], AIC = fs["AIC", col],
       BIC = fs["BIC", col], AICc = fs["AICc", col],
       ll_ML = fs["ll", "ML"], ll_REML = fs["ll", "REML"],
       vb = unname(res$vb), X = unname(res$X), X_names = colnames(res$X))
}
pred_block <- function(res, newmods = NULL, tau2.levels = NULL) {
  p <- if (is.null(newmods)) predict(res, tau2.levels = tau2.levels)
       else predict(res, newmods = newmods, tau2.levels = tau2.levels)
  p <- as.data.frame(p)
  list(newmods = if (is.null(newmods)) NULL else unname(as.matrix(newmods)),
       tau2_levels = tau2.levels,
       pred = p$pred, se = p$se, ci_lb = p$ci.lb, ci_ub = p$ci.ub,
       pi_lb = if (is.null(p$pi.lb)) NULL else p$pi.lb,
       pi_ub = if (is.null(p$pi.ub)) NULL else p$pi.ub)
}
robust_block <- function(res, cluster, contrasts = NULL) {
  r1 <- robust(res, cluster = cluster)                       # CR1, metafor's default
  r2 <- robust(res, cluster = cluster, clubSandwich = TRUE)  # CR2, Satterthwaite, HTZ
  cr1 <- list(estimate = c(r1$beta), se = r1$se, stat = r1$zval, p = r1$pval,
              ci_lb = r1$ci.lb, ci_ub = r1$ci.ub, df = r1$ddf,
              QM = r1$QM, QMdf = r1$QMdf, QMp = r1$QMp, n = r1$n, vb = unname(r1$vb))
  cr2 <- list(estimate = c(r2$beta), se = r2$se, stat = r2$zval, p = r2$pval,
              ci_lb = r2$ci.lb, ci_ub = r2$ci.ub, df = r2$ddf,
              QM = r2$QM, QMdf = r2$QMdf, QMp = r2$QMp, n = r2$n, vb = unname(as.matrix(r2$vb)))
  # the same numbers straight from clubSandwich
  vc <- vcovCR(res, cluster = cluster, type = "CR2")
  ct <- coef_test(res, cluster = cluster, vcov = vc, test = "Satterthwaite")
  cr2$cs_df <- ct$df_Satt
  cr2$cs_p <- ct$p_Satt
  if (!is.null(contrasts)) {
    cr2$contrasts <- lapply(contrasts, function(C) {
      C <- matrix(C, ncol = res$p)
      w <- Wald_test(res, constraints = C, vcov = vc, test = "HTZ")
      lc <- if (nrow(C) == 1) {
        l <- linear_contrast(res, vcov = vc, contrasts = C, test = "Satterthwaite",
                             p_values = TRUE)
        list(est = l$Est, se = l$SE, df = l$df, ci_lb = l$CI_L, ci_ub = l$CI_U, p = l$p_val)
      } else NULL
      list(C = unname(C), Fstat = w$Fstat, delta = w$delta, df_num = w$df_num,
           df_denom = w$df_denom, p = w$p_val, linear = lc)
    })
  }
  list(cr1 = cr1, cr2 = cr2)
}
case <- function(name, data, res, struct, time, V, mods, intercept, method, test,
                 predictions = list(), robust = NULL) {
  out$cases[[name]] <<- list(data = data, struct = struct, time = time, V = V, mods = mods,
                             intercept = intercept, method = method, test = test,
                             fit = fit_block(res), predict = predictions, robust = robust)
}
mv <- function(...) {  # rma.mv with the tight control, evaluated where it is called
  cl <- match.call(); cl[[1]] <- quote(rma.mv); cl$control <- ctrl
  res <- eval(cl, parent.frame())
  if (identical(res$struct[1], "UN")) {
    # nlminb can stop short when G is singular at the optimum (ishak_rho_un):
    # also run BFGS with a tight tolerance and keep the higher log-likelihood
    cl$control <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-15, maxit = 1e5)
    alt <- try(eval(cl, parent.frame()), silent = TRUE)
    if (!inherits(alt, "try-error") && logLik(alt) > logLik(res) + 1e-10) res <- alt
  }
  res
}
out$cases <- list()

# ---------------------------------------------------------------- three-level
for (m in c("REML", "ML")) {
  res <- mv(yi, vi, random = ~ 1 | district/school, data = kon, method = m)
  case(paste0("kon_", tolower(m)), "konstantopoulos2011", res, NULL, NULL,
       list(kind = "vi"), list(kind = "none"), TRUE, m, "z",
       predictions = list(pred_block(res)),
       robust = if (m == "REML") robust_block(res, kon$district) else NULL)
}
res <- mv(yi, vi, mods = ~ year_c, random = ~ 1 | district/school, data = kon, test = "t")
case("kon_year_t", "konstantopoulos2011", res, NULL, NULL, list(kind = "vi"),
     list(kind = "numeric", columns = list("year_c")), TRUE, "REML", "t",
     predictions = list(pred_block(res, newmods = c(-10, 0, 10))),
     robust = robust_block(res, kon$district))

# ---------------------------------------------------------------- repeated measures
structs <- c("CS", "HCS", "AR", "HAR", "CAR", "UN", "ID", "DIAG")
multi_tau2 <- c("HCS", "HAR", "UN", "DIAG")
for (vk in c("phi", "rho")) {
  V <- if (vk == "phi") V_ish_phi else V_ish_rho
  Vspec <- if (vk == "phi") list(kind = "phi", value = 0.97) else list(kind = "rho", value = 0.6)
  for (s in structs) {
    methods <- if (vk == "phi" && s %in% c("CS", "HAR", "UN")) c("REML", "ML") else "REML"
    for (m in methods) {
      res <- mv(yi, V, mods = ~ factor(time) - 1, random = ~ time | study, struct = s,
                data = ish, method = m)
      preds <- list(pred_block(res, newmods = diag(4),
                               tau2.levels = if (s %in% multi_tau2) 1:4 else NULL))
      if (s %in% multi_tau2)
        preds[[2]] <- pred_block(res, newmods = diag(4))  # no tau2.levels: no PI
      rob <- if (vk == "phi" && m == "REML" && s %in% c("CS", "HAR", "UN"))
        robust_block(res, ish$study, contrasts = list(
          rbind(c(-1, 1, 0, 0), c(-1, 0, 1, 0), c(-1, 0, 0, 1)),  # no change over time
          c(-1, 0, 1, 0)))                                        # 12 vs 3 months
      else NULL
      case(sprintf("ishak_%s_%s_%s", vk, tolower(s), tolower(m)), "ishak2007", res, s,
           "time", Vspec, list(kind = "factor", column = "time"), FALSE, m, "z",
           predictions = preds, robust = rob)
    }
  }
}
res <- mv(yi, V_ish_phi, mods = ~ factor(time) - 1, random = ~ time | study, struct = "CS",
          data = ish, test = "t")
case("ishak_phi_cs_reml_t", "ishak2007", res, "CS", "time", list(kind = "phi", value = 0.97),
     list(kind = "factor", column = "time"), FALSE, "REML", "t",
     predictions = list(pred_block(res, newmods = diag(4))))
res <- mv(yi, V_ish_phi, mods = ~ factor(time), random = ~ time | study, struct = "AR",
          data = ish)
case("ishak_phi_ar_reml_treatment", "ishak2007", res, "AR", "time",
     list(kind = "phi", value = 0.97), list(kind = "factor", column = "time"), TRUE, "REML", "z")

# ---------------------------------------------------------------- multivariate
for (m in c("REML", "ML")) {
  res <- mv(yi, V_ber, mods = ~ outcome - 1, random = ~ outcome | trial, struct = "UN",
            data = ber, method = m)
  case(paste0("berkey_un_", tolower(m)), "berkey1998", res, "UN", "outcome",
       list(kind = "given"), list(kind = "factor", column = "outcome"), FALSE, m, "z",
       predictions = list(pred_block(res, newmods = diag(2), tau2.levels = 1:2)),
       robust = if (m == "REML") robust_block(res, ber$trial,
                                              contrasts = list(c(1, -1))) else NULL)
}
res <- mv(yi, V_ber, mods = ~ outcome + outcome:year_c - 1, random = ~ outcome | trial,
          struct = "UN", data = ber)
case("berkey_un_year", "berkey1998", res, "UN", "outcome", list(kind = "given"),
     list(kind = "matrix"), FALSE, "REML", "z",
     predictions = list(pred_block(res, newmods = rbind(c(1, 0, 0, 0), c(0, 1, 0, 5)),
                                   tau2.levels = c(1, 2))))

# ---------------------------------------------------------------- synthetic pain, five time points
for (s in c("CAR", "HCS", "UN", "CS", "AR")) {
  res <- mv(yi, V_pain_phi, mods = ~ factor(months) - 1, random = ~ months | study,
            struct = s, data = pain)
  preds <- list(pred_block(res, newmods = diag(5),
                           tau2.levels = if (s %in% multi_tau2) 1:5 else NULL))
  rob <- if (s %in% c("CAR", "HCS")) robust_block(res, pain$study, contrasts = list(
    rbind(c(0, 0, -1, 1, 0), c(0, 0, -1, 0, 1)),   # 1 = 3 = 6 months
    c(0, 0, -1, 0, 1)))                           # 6 months vs 1 month
  else NULL
  case(sprintf("pain_cells_%s", tolower(s)), "pain5", res, s, "months",
       list(kind = "phi", value = 0.8), list(kind = "factor", column = "months"), FALSE,
       "REML", "z", predictions = preds, robust = rob)
}
grid <- log(c(1, 7, 14, 30, 60, 90, 180) / 30)
for (m in c("REML", "ML")) {
  res <- mv(yi, V_pain_phi, mods = ~ logm, random = ~ months | study, struct = "CAR",
            data = pain, test = "t", method = m)
  case(sprintf("pain_logtime_car_%s_t", tolower(m)), "pain5", res, "CAR", "months",
       list(kind = "phi", value = 0.8), list(kind = "numeric", columns = list("logm")),
       TRUE, m, "t", predictions = list(pred_block(res, newmods = grid)),
       robust = if (m == "REML") robust_block(res, pain$study) else NULL)
}
res <- mv(yi, V_pain_rho, mods = ~ logm, random = ~ months | study, struct = "HAR",
          data = pain)
case("pain_logtime_har_rho", "pain5", res, "HAR", "months", list(kind = "rho", value = 0.5),
     list(kind = "numeric", columns = list("logm")), TRUE, "REML", "z",
     predictions = list(pred_block(res, newmods = grid[c(1, 4, 7)], tau2.levels = c(1, 3, 5))))
res <- mv(yi, vi, random = ~ 1 | study/days, data = pain)
case("pain_threelevel", "pain5", res, NULL, NULL, list(kind = "vi"), list(kind = "none"),
     TRUE, "REML", "z", predictions = list(pred_block(res)),
     robust = robust_block(res, pain$study))

writeLines(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE, null = "null"),
           "tests/data/rma_mv_reference.json")
cat("cases:", length(out$cases), "\n")

# Reference values for tests/test_bias_reference.py, computed with R metafor:
# - ranktest (Begg & Mazumdar) on dat.landenberger2005 (k = 58, no ties: exact
#   distribution of Kendall's tau, as cor.test(exact = TRUE)) and dat.bcg;
# - fsn(type = "Rosenthal" | "Orwin" | "Rosenberg") on dat.landenberger2005, dat.bcg
#   and dat.molloy2014;
# - rma.glmm(measure = "PLO") heterogeneity tests (QE.Wld, QE.LRT and p-values) on
#   dat.pritz1997 and the cement-leakage counts of tests/data/metafor/mwa_cement_leakage.json.
# Run from the repository root:
#   Rscript tests/data/bias_reference.R
# Writes tests/data/bias_reference.json.
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
out <- list(generator = sprintf("R %s, metafor %s, metadat %s",
                                paste(R.version$major, R.version$minor, sep = "."),
                                as.character(packageVersion("metafor")),
                                as.character(packageVersion("metadat"))))
# as in metafor's help page for dat.landenberger2005 (log odds ratios of recidivism)
land <- escalc(measure = "OR", ai = n.ctrl.rec, bi = n.ctrl.non, ci = n.cbt.rec,
               di = n.cbt.non, data = dat.landenberger2005)
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
mol <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014)
sets <- list(landenberger = land, bcg = bcg, molloy = mol)
for (nm in names(sets)) {
  d <- sets[[nm]]
  res <- rma(yi, vi, data = d)
  rt <- ranktest(res)
  blk <- list(yi = as.numeric(d$yi), vi = as.numeric(d$vi),
              ranktest = list(tau = unname(rt$tau), p = rt$pval))
  for (type in c("Rosenthal", "Orwin", "Rosenberg")) {
    f <- fsn(yi, vi, data = d, type = type)
    blk[[paste0("fsn_", tolower(type))]] <- list(n = f$fsnum, p = f$pval, mean = f$meanes,
                                                 target = f$target)
  }
  out[[nm]] <- blk
}
glmm <- list(pritz = dat.pritz1997[, c("xi", "ni")],
             cement = fromJSON("tests/data/metafor/mwa_cement_leakage.json")$data[, c("xi", "ni")])
for (nm in names(glmm)) {
  d <- glmm[[nm]]
  g <- rma.glmm(measure = "PLO", xi = xi, ni = ni, data = d)
  out[[paste0("glmm_", nm)]] <- list(xi = d$xi, ni = d$ni, q_wald = g$QE.Wld, q_wald_p = g$QEp.Wld,
                                     q_lrt = g$QE.LRT, q_lrt_p = g$QEp.LRT, tau2 = g$tau2,
                                     estimate = as.numeric(g$beta))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null"),
           "tests/data/bias_reference.json")

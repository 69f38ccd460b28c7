# Reference values for tests/test_plots_diagnostics.py: metafor's baujat() and
# radial() coordinates for the BCG data (dat.bcg, log risk ratios, REML).
# Run: Rscript tests/data/plots_baujat_bcg.R > tests/data/plots_baujat_bcg.json
suppressMessages({library(metafor); library(jsonlite)})
dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
res <- rma(yi, vi, data = dat, method = "REML",
           control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000))
pdf(NULL)
b <- baujat(res)
r <- radial(res)
invisible(dev.off())
cat(toJSON(list(
  generator = paste("R", getRversion(), "metafor", packageVersion("metafor")),
  yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
  baujat_x = b$x, baujat_y = b$y,
  radial_x = r$x, radial_y = r$y
), digits = NA, auto_unbox = TRUE, pretty = TRUE))

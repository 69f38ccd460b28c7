# Extra escalc reference values for tests/test_effect_sizes.py:
# zero cells and continuity-correction options (add/to/drop00) for RR/OR/RD,
# single proportions with 0/n and n/n, MN/MNLN, ROM/MD/SMD, COR/ZCOR, MC/SMCR.
#
# Run from the repository root:  Rscript tests/data/escalc_extra.R
# Writes tests/data/escalc_extra.json.  Generated with R 4.2.2, metafor 3.8-1
# (Debian packages r-base-core, r-cran-metafor), jsonlite 1.8.4.
suppressMessages({ library(metafor); library(jsonlite) })

cases <- list()
add_case <- function(name, measure, data, opts = list()) {
  args <- c(list(measure = measure), data, opts)
  es <- suppressWarnings(do.call(escalc, args))
  ni <- attr(es$yi, "ni")
  cases[[length(cases) + 1]] <<- list(
    name = name, measure = measure, data = data,
    options = opts,  # only the options passed to escalc; the rest are escalc's defaults
    yi = as.numeric(es$yi), vi = as.numeric(es$vi),
    ni = if (is.null(ni)) NULL else as.numeric(ni))
}

# 2x2 tables: zero cells in one arm, both arms (ai = ci = 0), and bi = di = 0
tab0 <- list(ai = c(0, 3, 0, 5, 10, 0, 12, 5),
             bi = c(10, 7, 20, 0, 15, 30, 40, 0),
             ci = c(2, 0, 0, 4, 12, 0, 9, 6),
             di = c(8, 10, 20, 6, 0, 25, 41, 0))
tab_nozero <- list(ai = c(3, 4, 12), bi = c(17, 40, 30), ci = c(6, 9, 20), di = c(14, 35, 25))
opt_sets <- list(default = list(), all = list(to = "all"), if0all = list(to = "if0all"),
                 none = list(to = "none"), add1 = list(add = 1), drop00 = list(drop00 = TRUE),
                 all_quarter = list(to = "all", add = 0.25))
for (m in c("RR", "OR", "RD")) {
  for (o in names(opt_sets)) add_case(sprintf("zero2x2_%s_%s", m, o), m, tab0, opt_sets[[o]])
  add_case(sprintf("nozero2x2_%s_if0all", m), m, tab_nozero, list(to = "if0all"))
}

# single proportions incl. 0/n and n/n
prop <- list(xi = c(0, 3, 10, 7, 25, 1), ni = c(10, 10, 10, 20, 25, 40))
for (m in c("PR", "PLO", "PAS", "PFT")) {
  for (o in c("default", "all", "if0all", "none", "add1"))
    add_case(sprintf("prop_%s_%s", m, o), m, prop, opt_sets[[o]])
}
prop_nozero <- list(xi = c(2, 5, 9), ni = c(10, 12, 30))
for (m in c("PR", "PLO")) add_case(sprintf("propnozero_%s_if0all", m), m, prop_nozero, list(to = "if0all"))

# single means
mn <- list(mi = c(5.2, 10, 0.8, 123.4), sdi = c(1.1, 4, 0.3, 50), ni = c(20, 35, 8, 2))
for (m in c("MN", "MNLN")) add_case(sprintf("mean_%s", m), m, mn)

# two-group means (dat.normand1999 plus small groups)
dn <- dat.normand1999
two <- list(m1i = c(dn$m1i, 3.5, 10), sd1i = c(dn$sd1i, 1.2, 2), n1i = c(dn$n1i, 2, 3),
            m2i = c(dn$m2i, 2.5, 12), sd2i = c(dn$sd2i, 0.9, 3), n2i = c(dn$n2i, 2, 2))
for (m in c("MD", "SMD", "ROM")) add_case(sprintf("twogroup_%s", m), m, two)

# correlations
cr <- list(ri = c(0.3, -0.2, 0.95, 0, -0.99, 1 / 3), ni = c(20, 30, 10, 50, 8, 4))
for (m in c("COR", "ZCOR")) add_case(sprintf("cor_%s", m), m, cr)

# pre-post (MC = m1i - m2i with m1i = pre)
pp <- list(m1i = c(7, 6.3, 5, 40), m2i = c(2, 1.7, 5.5, 31), sd1i = c(1.8, 2, 1, 12),
           sd2i = c(1.6, 1, 1.2, 9), ni = c(69, 82, 10, 3), ri = c(0.5, 0.3, 0.8, -0.4))
add_case("prepost_MC", "MC", pp)
add_case("prepost_SMCR", "SMCR", pp[c("m1i", "m2i", "sd1i", "ni", "ri")])

out <- list(generator = sprintf("%s, metafor %s, jsonlite %s", R.version.string,
                                packageVersion("metafor"), packageVersion("jsonlite")),
            cases = cases)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(17), na = "null", null = "null", pretty = TRUE),
           "tests/data/escalc_extra.json")

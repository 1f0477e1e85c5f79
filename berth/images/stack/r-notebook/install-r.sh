#!/bin/bash
# R from Debian with IRkernel and the tidyverse-level packages Debian carries, registered as the
# "ir" Jupyter kernel of the image's Python environment. Shared by r-notebook and
# datascience-notebook (the builder copies this one file into both build contexts), so both get
# the same R. Runs as root in one layer: apt lists and caches are gone when it ends.
set -euo pipefail

# Debian packages, never compiled here: a build stays minutes long, and `apt-get` gives the
# matching system libraries. No compilers (r-base-dev would add ~380 MB): install.packages()
# works for packages without C/C++/Fortran code; see docs/images.md.
R_PACKAGES=(
    r-base-core
    r-cran-irkernel
    r-cran-tidyverse
    r-cran-rmarkdown
    r-cran-htmlwidgets
    r-cran-hexbin
    r-cran-rsqlite
    r-cran-data.table
    r-cran-caret
    r-cran-e1071
    r-cran-randomforest
    r-cran-forecast
    r-cran-crayon
    r-cran-rcurl
    r-cran-shiny
)

# As the foundation drops /usr/share/doc and man pages: R packages' vignettes (doc/, 23 MB;
# help pages stay, so ?name works) and MathJax's unminified copy (unpacked/, 23 MB; rmarkdown
# uses the packed one) are never unpacked.
cat > /etc/dpkg/dpkg.cfg.d/berth-r-slim <<'DPKG'
path-exclude /usr/lib/R/site-library/*/doc/*
path-exclude /usr/lib/R/library/*/doc/*
path-exclude /usr/share/javascript/mathjax/unpacked/*
DPKG

apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${R_PACKAGES[@]}"
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*

# The first library on .libPaths() (Debian's /usr/local/lib/R/site-library) belongs to the
# notebook user, as /opt/venv does: install.packages("x") in a notebook lands there without sudo
# and without R's "create a personal library?" prompt, which a kernel cannot answer.
mkdir -p /usr/local/lib/R/site-library
cat >> /etc/R/Rprofile.site <<'PROFILE'
# Berth: CRAN over HTTPS for install.packages() (the system's CA store, extra CAs included).
local({ repos <- getOption("repos"); repos["CRAN"] <- "https://cloud.r-project.org"; options(repos = repos) })
PROFILE

# The kernel spec goes into the Python environment's share/jupyter, beside python3's. As the
# notebook user, who owns that environment: run as root, jupyter would leave root-owned
# directories in the user's home (HOME is /home/jovyan for every user of the image).
setpriv --reuid="${NB_UID}" --regid="${NB_GID}" --clear-groups -- \
    R --quiet --no-save -e "IRkernel::installspec(user = FALSE, prefix = '${VENV_DIR}')"
fix-permissions /usr/local/lib/R/site-library "${VENV_DIR}/share/jupyter"

# R is here: base-notebook's "R (installs on first use)" kernel would only install a second one.
rm -rf "${VENV_DIR}/share/jupyter/kernels/r"

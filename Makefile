# The two set-up commands of the README. Each creates .venv with python3.12 and installs the package;
# `test` also installs Debian's chromium where it is missing (the HTML report is tested in a browser).
.PHONY: demo test lint

demo:
	scripts/venv train,import,dev
	.venv/bin/bimix demo --out demo-out

# Two pytest workers on two cores: one BLAS/OpenMP thread each, or their spin-waits thrash. The
# torchrun tests (marker "serial") run alone afterwards: beside another worker their ranks starve.
test:
	scripts/venv train,import,dev
	scripts/install-chromium
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	.venv/bin/python -m pytest -n 2 --dist loadgroup -q -m "not serial"
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	.venv/bin/python -m pytest -q -m serial

lint:
	scripts/venv train,import,dev
	.venv/bin/ruff check bimix_bayes tests benchmarks

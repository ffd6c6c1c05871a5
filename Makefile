# The two set-up commands of the README. Each creates .venv with python3.12 and installs the package.
.PHONY: demo test lint

demo:
	scripts/venv train,dev
	.venv/bin/bimix demo --out demo-out

# Two pytest workers on two cores: one BLAS/OpenMP thread each, or their spin-waits thrash.
test:
	scripts/venv train,dev
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	.venv/bin/python -m pytest -n 2 --dist loadgroup -q

lint:
	scripts/venv train,dev
	.venv/bin/ruff check bimix_bayes tests benchmarks

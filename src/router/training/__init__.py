"""Training and monitoring of the delay-risk model: rows from simulations, ledgers and outcome files."""

"""The learned delay-risk model: estimator, compiled inference, persistence, metrics.

``router.risk`` sits below the engine: the router loads a model from
``models/delay_risk/<version>/`` and scores every lane of an order with its
compiled trees. Training from simulations, ledgers and outcome files lives
above the simulator, in :mod:`router.training`.
"""

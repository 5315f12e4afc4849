"""Parameter files of the example project (one module per experiment, each with get_params())."""

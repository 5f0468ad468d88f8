"""The notice shown wherever the model's predictions are: a dependency-free module, so the command
line can print it (``--help``) without loading the model."""

DISCLAIMER = (
    "Model estimates for planning and education only; not medical advice. "
    "Individual responses vary; clinical judgement and the product label govern treatment."
)

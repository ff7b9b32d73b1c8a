"""The DARTS search space's eight candidate operations (Liu et al., ICLR 2019, Sec. 3.1), in the order of
the paper's code. Torch-free, so the config validation and the report can name them without importing torch."""

PRIMITIVES = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

# The non-GEMM layers (pooling, LRN, ReLU, dropout, batch norm, global average
# pooling, residual add, flatten) and the layer registry.
occkd_test(test_layers SOURCES test_layers.c LIBS occkd_layers LABELS unit)

"""What a conversion can produce. Imports nothing: the linter reads it without loading the converter."""

# the Trainer targets: the package the generated code imports, and its alias
PACKAGES = {"lightning": ("lightning", "L"), "pytorch_lightning": ("pytorch_lightning", "pl")}
TARGETS = (*PACKAGES, "fabric", "auto")

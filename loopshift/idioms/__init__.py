"""One module per idiom family: each detects its facts once, in one plain frozen record, and says
what each target does with them (the Trainer's arguments and hooks, Fabric's calls). The analysis of
the Trainer target and the Fabric target both read those facts, so the two cannot disagree.

- clipping.py: `clip_grad_norm_` / `clip_grad_value_`
- precision.py: `torch.autocast` blocks and a `GradScaler`
"""

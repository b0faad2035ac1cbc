"""The everyday workflow behind ``rlrobot train/eval/record/plot/demo``: configs, run folders,
training with checkpoints and exact resume, evaluation, videos and learning curves."""

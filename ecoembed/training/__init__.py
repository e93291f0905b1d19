"""Training loops: stage-1 encoders and the stage-2 fusion network, resumable, seeded.

* :mod:`ecoembed.training.stage1`: self-supervised pretraining of one sensor's encoder.
* :mod:`ecoembed.training.fusion_data`: stage-2 scenes as pixel series and the batch sampler.
* :mod:`ecoembed.training.stage2`: the fusion network on frozen encoders.
* :mod:`ecoembed.training.probe`: linear probes of frozen encoders.
* :mod:`ecoembed.training.seed`: one call to seed every generator.

Checkpoints are written and read by :mod:`ecoembed.weights`.
"""

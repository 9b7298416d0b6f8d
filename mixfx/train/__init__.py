"""Training of the FXencoder and of MixFXcloner (the trainers are :mod:`mixfx.pipelines.train_encoder` / ``train_cloner``).

* :mod:`~mixfx.train.config`: ``EncoderTrainConfig`` / ``ClonerTrainConfig`` (paper and ``tiny`` presets).
* :mod:`~mixfx.train.batches`: raw batches as pure functions of ``(seed, step, rank)`` (``step_generator``,
  ``ContrastiveSegments`` + ``contrastive_views``, ``ClonerSegments`` + ``cloner_triplet``).
* :mod:`~mixfx.train.schedule`: probability scheduling (per-FX validation losses → probabilities).
* :mod:`~mixfx.train.distributed`: ``Runtime``, ``runtime`` (torchrun / DDP setup and teardown), ``all_reduce_mean``,
  ``wrap_ddp``.
* :mod:`~mixfx.train.run_folder`: ``RunFolder`` (config, metrics, TensorBoard), ``start_or_resume``,
  ``save_step_checkpoint``.
* :mod:`~mixfx.train.loop`: ``run_loop``, ``data_loader``, ``cosine_scheduler``.
* :mod:`~mixfx.train.trainer`: ``setup_trainer`` → ``Trainer``, the setup both trainers share.
"""

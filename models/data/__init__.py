"""Data for fraudstream: the synthetic generator, the Kaggle CSV loader, file writers.

Pure Python + numpy (no pyflink). Entry points: `models.data.generator.generate`,
`models.data.kaggle.load_kaggle_csv`, `models.data.writers.write_records`, and the
`fraudstream generate` / `fraudstream load-kaggle` commands (`models.data.cli`).
"""

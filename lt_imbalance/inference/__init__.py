"""Using a trained model: ``lt-imbalance predict`` (:mod:`.predict`), ``lt-imbalance export``
(:mod:`.export`, ONNX / TorchScript with the normalisation inside), and table encoding without
scikit-learn (:mod:`.tables`)."""

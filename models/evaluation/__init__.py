"""Measuring instruments for de-identification: recognizers, detectors, metrics, the model card's
figures (:mod:`models.evaluation.card_metrics`) and the evaluation suite behind
``uunet-train evaluate`` (:mod:`models.evaluation.cli`).

Nothing here needs torch: the models under test are ONNX directories run with ONNX Runtime, the
recognizers and detectors are ONNX/dlib models that ship inside their wheels.
"""

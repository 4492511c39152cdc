"""Image taggers: WD14 ONNX models (run here), DeepDanbooru and BLIP/CLIP (listed, weights named)."""

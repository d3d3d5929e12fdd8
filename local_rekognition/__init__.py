"""A Rekognition-compatible face-analysis server (AWS JSON 1.1) on offline CPU models."""

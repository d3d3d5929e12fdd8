"""Developer tools installed with facequeue but no part of it: nothing in producer/, worker/ or local_rekognition/
imports them, and the container images leave them out."""

"""Constants fitted by scripts/fit_face_judgement.py: do not edit by hand, rerun it with --write.

Each block cites the cross-validated measurement behind it (docs/face-judgement.md has the method).
"""

# AgeRange, in log(1 + age) around the age network's mean m (x = log(1 + m)): centre c0 + c1 x + c2 x²,
# half-width FACTOR × max(MIN_ERROR, e0 + e1 x + e2 × spread). Fitted on 821 UTKFace faces
# (tests/data/age_faces.csv): 5-fold CV 75.9% hold the labelled age, mean width
# 18.8 years; adults 18-70 74.6%, width 21.8.
AGE_CENTRE = (0.713733, 0.333588, 0.121847)
AGE_ERROR = (0.250309, -0.015632, 0.179964)
AGE_HALF_WIDTH_FACTOR = 1.183962
AGE_MIN_ERROR = 0.05
AGE_MIN_WIDTH_YEARS = 2
AGE_MAX_YEARS = 100
AGE_COVERAGE = 0.759

# Gender: temperature scaling (a slope, no offset) of the network's logit, fitted on the age set's faces aged
# 13 and over; on the 413 development faces 93.5% right (97.1% of those aged 13+),
# Brier score 0.047.
GENDER_SLOPE = 0.557968
GENDER_OFFSET = 0.000000

# MouthOpen: logit = w0 + w1 × gap + w2 × smile (gap: inner-lip gap over mouth width; smile: blendshape
# score). 412 development faces, 5-fold CV 90.0% right (gap > 0.3 before:
# 63.6%).
MOUTH_OPEN_WEIGHTS = (-4.411979, 30.931461, 2.743004)

# Emotions: added to CALM's log-probability, and weight × (smile − 0.5) to HAPPY's. 322 development
# faces a person reads HAPPY or CALM: 5-fold CV 83.2% right (network alone 74.5%).
EMOTION_CALM_PRIOR = 2.25
EMOTION_SMILE_WEIGHT = 7.0

"""The encoders: ``base`` (what is read of one: patch, dim, pool), ``resnet`` (the ResNet
trunks), ``sparse`` (the sparse trunk and its batch norm, chapter 02) and ``predictor``
(CNN-JEPA's convolutional predictor, chapter 03).
"""

"""From files to a method's inputs: ``folders`` (ImageNet-layout folders, the evaluation
transform), ``decoding`` (reading images, the decoded cache), ``imagenet100``, ``scenes`` (the
generated data sets), ``augment`` (the views, batched on the device) and ``pipeline`` (the
loader: seeded draws, decoding, masks, a micro-batch -> the forward's inputs).
"""

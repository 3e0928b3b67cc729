"""Audio in and out around Assistant.turn(): VAD, speech-to-text, text-to-speech, channels.

Nothing here yet: the voice path is built on top of the dialogue layer in a later step.
"""

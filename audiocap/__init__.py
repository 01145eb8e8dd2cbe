"""Audio captioning with a frozen pre-trained language model guided by audio-based similar caption retrieval (Koizumi et al. 2020)"""

__version__ = "0.1.0"

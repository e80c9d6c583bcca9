"""Voice out: TTS engines (espeak-ng, piper), audio sinks, and the Speaker that says lines.

Public API (see each module): VoiceSpec, AudioChunk, Audio, TTSEngine, TTS_ENGINES,
open_engine, engine_from_settings, synthesize_all (base); Speaker, Utterance, Spoken
(speaker); AudioSink, NullSink, WavSink, TeeSink, LineAudio (sinks); DeviceSink
(device); build_sink, build_speaker (build).
"""

"""/health/detailed's speech probes and the voice stage metrics, on a real server with the
real speech models, a spoken WAV sent over a real socket."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.voice.conftest import VoiceServer
from tests.voice.spoken import cached_spoken_wav
from tests.voice.voice_client import VoiceClient


def stage_counts(base_url: str) -> dict[str, float]:
    """bankbot_voice_stage_duration_seconds_count by stage, from the Prometheus text."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text  # demo mode: no token needed
    return {
        sample.labels["stage"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "bankbot_voice_stage_duration_seconds_count"
    }


def test_detailed_health_probes_the_speech_models_at_most_once_a_minute(
    voice_server: VoiceServer,
) -> None:
    first = httpx.get(f"{voice_server.base_url}/health/detailed", timeout=30).json()
    second = httpx.get(f"{voice_server.base_url}/health/detailed", timeout=30).json()
    for part, name_key, name in (
        ("stt", "model_name", "whisper-tiny.en"),
        ("tts", "voice", "piper-joe/en_US-joe-medium.onnx"),
    ):
        probe = first["components"][part]
        assert probe["status"] == "healthy" and probe["loaded"] is True
        assert probe[name_key] == name
        assert probe["inference_latency_ms"] > 1  # a real inference, not a cache lookup
        # Within the interval the figure is reported again, not measured again.
        again = second["components"][part]
        assert again["inference_latency_ms"] == probe["inference_latency_ms"]
        assert again["measured_s_ago"] >= probe["measured_s_ago"]
    assert first["status"] == "healthy"


def test_a_spoken_turn_moves_the_voice_stage_metrics_and_the_speech_cache(
    voice_server: VoiceServer,
) -> None:
    before = stage_counts(voice_server.base_url)
    cache_before = httpx.get(f"{voice_server.base_url}/api/metrics", timeout=10).json()["cache"]
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        client.say(cached_spoken_wav("check my balance", "en-us", 150, 50))
        reply = client.until("reply")
        client.until("audio_end")
    after = stage_counts(voice_server.base_url)
    cache_after = httpx.get(f"{voice_server.base_url}/api/metrics", timeout=10).json()["cache"]
    assert reply["page"] == "home"
    for stage in ("endpoint", "stt", "stt_compute", "assistant", "tts_first", "total"):
        assert after.get(stage, 0) == before.get(stage, 0) + 1, stage
    spoken_pieces = cache_after["hits"] + cache_after["misses"]
    assert spoken_pieces > cache_before["hits"] + cache_before["misses"]
    assert cache_after["hits"] > cache_before["hits"]  # "Your current account balance is"
    assert 0 < cache_after["hit_ratio_pct"] <= 100

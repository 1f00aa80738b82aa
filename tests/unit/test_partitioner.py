"""The producer's partitioner chooses the partition that Kafka's own clients choose."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from shared.bus.partitioner import KeyPartitioner, murmur2

# org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed 32-bit results)
JAVA = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("key", list(JAVA))
def test_murmur2_is_the_java_clients(key: bytes) -> None:
    assert murmur2(key) == JAVA[key] & 0xFFFFFFFF


def test_murmur2_agrees_with_aiokafka_for_every_length() -> None:
    rng = random.Random(7)
    for length in range(0, 130):
        for _ in range(40):
            data = rng.randbytes(length)
            assert murmur2(data) == aiokafka_murmur2(data), (length, data)


def test_a_key_goes_to_the_partition_aiokafka_would_choose() -> None:
    rng = random.Random(11)
    ours, theirs = KeyPartitioner(), DefaultPartitioner()
    for count in (1, 3, 6, 7, 32):
        partitions = list(range(count))
        for _ in range(300):
            key = str(rng.getrandbits(128)).encode()
            assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)


def test_a_message_without_a_key_goes_to_an_available_partition() -> None:
    chosen = {KeyPartitioner()(None, [0, 1, 2, 3], [1, 3]) for _ in range(200)}
    assert chosen == {1, 3}

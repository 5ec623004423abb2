"""The Batcher, cut at its seams.

``_batcher`` is the facade (options, lifecycle, ``send``, ``send_all``, ``flush``);
``_crew`` starts its tasks and stops them in order; ``_accumulator`` takes messages
in and seals packets; ``_sender`` runs the workers that send them; ``_packet`` is a
packet and where its receipts go; ``_feeder`` reads a ``send_all`` source;
``_primitives`` holds the window and the token bucket; ``_track`` polls delivery
states. Data flows one way: facade → accumulator → queue → sender → client.
"""

from aiosms._batching._batcher import (
    DEFAULT_LINGER,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_PENDING,
    Batcher,
    hand_over_unclaimed,
)

__all__ = [
    "DEFAULT_LINGER",
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MAX_PENDING",
    "Batcher",
    "hand_over_unclaimed",
]

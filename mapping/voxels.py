"""A sparse voxel grid with per-voxel colour sums, observation counts and label votes.

Voxels are addressed by packed integer keys and stored in *slots* that never move, so vote
tables can refer to them; a sorted key index maps keys to slots. Integrating a frame first
collapses runs of equal keys along image rows (neighbouring pixels mostly fall in one voxel),
then merges the frame's distinct voxels into the grid: the cost is a few passes over the
frame's pixels plus work proportional to its distinct voxels, never to the frames seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_AXIS_BITS = 17
_AXIS_OFFSET = 1 << (_AXIS_BITS - 1)
_AXIS_MASK = (1 << _AXIS_BITS) - 1
#: voxel coordinates must stay within +-2^16 voxels of the origin (3.2 km at 5 cm)
AXIS_LIMIT = _AXIS_OFFSET - 1
#: keys leave this many low bits free, so one sort of ``key << 12 | instance`` groups a frame's
#: pixels by voxel and by instance at once (instance ids below 4096)
_LABEL_BITS = 12


def pack_keys(ijk: np.ndarray) -> np.ndarray:
    """Pack integer voxel coordinates (N, 3) into int64 keys (N,)."""
    return pack_axes(ijk[:, 0], ijk[:, 1], ijk[:, 2])


def pack_axes(i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pack three int64 coordinate arrays (N,) into keys (N,), without stacking them."""
    key = (i + _AXIS_OFFSET) << (2 * _AXIS_BITS)
    key |= (j + _AXIS_OFFSET) << _AXIS_BITS
    key |= k + _AXIS_OFFSET
    return key


_CHANNEL_BITS = 21


def pack_rgb_sums(rgb: np.ndarray) -> np.ndarray:
    """Colours (..., 3) uint8 as int64 ``r << 42 | g << 21 | b``.

    Sums of up to 8,000 packed colours stay exact per channel (21 bits each), so one running
    sum gives every run's three channel sums at once.
    """
    packed = rgb[..., 0].astype(np.int64) << (2 * _CHANNEL_BITS)
    packed |= rgb[..., 1].astype(np.int64) << _CHANNEL_BITS
    packed |= rgb[..., 2].astype(np.int64)
    return packed


def unpack_rgb_sums(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_rgb_sums` for sums: (N,) int64 -> (N, 3) float64."""
    mask = (1 << _CHANNEL_BITS) - 1
    return np.stack(
        [(packed >> (2 * _CHANNEL_BITS)) & mask, (packed >> _CHANNEL_BITS) & mask, packed & mask],
        axis=1,
    ).astype(np.float64)


def unpack_keys(keys: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_keys`: (N,) int64 -> (N, 3) int64."""
    k = keys.astype(np.int64)
    return (
        np.stack(
            [(k >> (2 * _AXIS_BITS)) & _AXIS_MASK, (k >> _AXIS_BITS) & _AXIS_MASK, k & _AXIS_MASK],
            axis=1,
        )
        - _AXIS_OFFSET
    )


class _Growable:
    """An append-only array with amortised doubling."""

    def __init__(self, shape_tail: tuple[int, ...], dtype: type, capacity: int = 1024) -> None:
        self.data: np.ndarray = np.zeros((capacity, *shape_tail), dtype=dtype)
        self.size = 0

    def extend(self, count: int) -> None:
        needed = self.size + count
        if needed > len(self.data):
            capacity = max(needed, 2 * len(self.data))
            grown = np.zeros((capacity, *self.data.shape[1:]), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.size = needed

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.size]


class VoteTable:
    """Sparse counts of (slot, label) pairs, kept sorted by packed key ``slot << 32 | label``."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, slots: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> None:
        """Add ``counts`` votes for each (slot, label); labels are non-negative int32."""
        keys = (slots.astype(np.int64) << 32) | labels.astype(np.int64)
        unique, inverse = np.unique(keys, return_inverse=True)
        sums = np.bincount(inverse.reshape(-1), weights=counts, minlength=len(unique))
        sums = sums.astype(np.int64)
        position = np.asarray(np.searchsorted(self.keys, unique))
        found: np.ndarray = position < len(self.keys)
        found[found] = self.keys[position[found]] == unique[found]
        self.counts[position[found]] += sums[found]
        if np.any(~found):
            self.keys = np.insert(self.keys, position[~found], unique[~found])
            self.counts = np.insert(self.counts, position[~found], sums[~found])

    def winners(self, num_slots: int) -> tuple[np.ndarray, np.ndarray]:
        """Per slot, the label with the most votes (ties: the smallest label) and its share.

        Returns:
            labels: (num_slots,) int32, -1 where a slot has no vote.
            share: (num_slots,) float32, the winner's fraction of the slot's votes.
        """
        labels = np.full(num_slots, -1, dtype=np.int32)
        share = np.zeros(num_slots, dtype=np.float32)
        if len(self.keys) == 0:
            return labels, share
        slots = self.keys >> 32
        votes = self.labels_of_keys()
        # Sort by slot, then by count descending, then label ascending: first row per slot wins.
        order = np.lexsort((votes, -self.counts, slots))
        first = np.ones(len(order), dtype=bool)
        first[1:] = slots[order][1:] != slots[order][:-1]
        win = order[first]
        totals = np.bincount(slots, weights=self.counts, minlength=num_slots)
        labels[slots[win]] = votes[win]
        share[slots[win]] = self.counts[win] / np.maximum(totals[slots[win]], 1)
        return labels, share

    def labels_of_keys(self) -> np.ndarray:
        return (self.keys & 0xFFFFFFFF).astype(np.int32)

    def state(self) -> dict[str, np.ndarray]:
        return {"keys": self.keys.copy(), "counts": self.counts.copy()}

    def load(self, keys: np.ndarray, counts: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order].astype(np.int64)
        self.counts = counts[order].astype(np.int64)


@dataclass
class FrameVoxels:
    """One frame's points reduced to its distinct voxels.

    Attributes:
        slots: (M,) int64 slots of the frame's distinct voxels.
        new_slots: how many of them were created by this frame.
        instance_pixels: instance id -> the frame's pixels that showed it.
    """

    slots: np.ndarray
    new_slots: int
    #: instance id -> pixels of the frame that showed it (valid pixels only)
    instance_pixels: dict[int, int]


class VoxelGrid:
    """Voxels of ``voxel_m`` with colour sums, observation counts and instance/category votes.

    Attributes (per slot, slot order):
        keys: (N,) int64 packed voxel coordinates.
        rgb_sum: (N, 3) float64 sum of observed colours (0..255).
        count: (N,) int64 points that fell in the voxel.
    """

    def __init__(self, voxel_m: float) -> None:
        self.voxel_m = float(voxel_m)
        self._keys = _Growable((), np.int64)
        self._rgb_sum = _Growable((3,), np.float64)
        self._count = _Growable((), np.int64)
        self._sorted_keys = np.zeros(0, dtype=np.int64)
        self._sorted_slots = np.zeros(0, dtype=np.int64)
        self.instance_votes = VoteTable()
        self.category_votes = VoteTable()

    def __len__(self) -> int:
        return self._keys.size

    @property
    def keys(self) -> np.ndarray:
        return self._keys.view

    @property
    def rgb_sum(self) -> np.ndarray:
        return self._rgb_sum.view

    @property
    def count(self) -> np.ndarray:
        return self._count.view

    def centres(self) -> np.ndarray:
        """(N, 3) float64 world coordinates of the voxel centres."""
        return (unpack_keys(self.keys) + 0.5) * self.voxel_m

    def colors(self) -> np.ndarray:
        """(N, 3) uint8 mean colour per voxel."""
        mean = self.rgb_sum / np.maximum(self.count, 1)[:, None]
        return np.clip(np.round(mean), 0, 255).astype(np.uint8)

    def voxel_coords(self, points_world: np.ndarray) -> np.ndarray:
        return np.floor(points_world / self.voxel_m).astype(np.int64)

    def _slots_for(self, unique_keys: np.ndarray) -> tuple[np.ndarray, int]:
        """Slots of sorted, distinct keys, creating the missing ones."""
        position = np.asarray(np.searchsorted(self._sorted_keys, unique_keys))
        found: np.ndarray = position < len(self._sorted_keys)
        found[found] = self._sorted_keys[position[found]] == unique_keys[found]
        slots = np.empty(len(unique_keys), dtype=np.int64)
        slots[found] = self._sorted_slots[position[found]]
        missing = np.flatnonzero(~found)
        if len(missing):
            first = len(self._keys.view)
            new = np.arange(first, first + len(missing), dtype=np.int64)
            slots[missing] = new
            for array in (self._keys, self._rgb_sum, self._count):
                array.extend(len(missing))
            self._keys.view[first:] = unique_keys[missing]
            self._sorted_keys = np.insert(
                self._sorted_keys, position[missing], unique_keys[missing]
            )
            self._sorted_slots = np.insert(self._sorted_slots, position[missing], new)
        return slots, len(missing)

    def integrate(
        self,
        keys: np.ndarray,
        rgb_packed: np.ndarray,
        instance: np.ndarray,
        category: np.ndarray | None = None,
        weight: np.ndarray | None = None,
    ) -> FrameVoxels:
        """Add points given by their voxel keys, in image order.

        Args:
            keys: (P,) int64 packed voxel keys, pixels in row-major order.
            rgb_packed: (P,) int64 colours packed by :func:`pack_rgb_sums`.
            instance: (P,) int32 instance ids (0 = unlabelled, not voted).
            category: (P,) int32 category indices (-1 = unknown) for pixels that carry a
                category without an instance id (a detector's output); None when categories
                follow from instance ids.
            weight: (P,) int64 votes each pixel casts (a detector's confidence in hundredths);
                None: one vote per pixel. Counts, colours and the returned pixel counts are
                per pixel either way.
        """
        if len(keys) == 0:
            return FrameVoxels(np.zeros(0, dtype=np.int64), 0, {})
        # Runs of equal (key, instance, category) along the pixel order collapse to one entry.
        change = np.empty(len(keys), dtype=bool)
        change[0] = True
        np.not_equal(keys[1:], keys[:-1], out=change[1:])
        change[1:] |= instance[1:] != instance[:-1]
        if category is not None:
            change[1:] |= category[1:] != category[:-1]
        if weight is not None:
            change[1:] |= weight[1:] != weight[:-1]
        starts = np.flatnonzero(change)
        ends = np.append(starts[1:], len(keys))
        run_len = ends - starts
        # A run has one weight, so its votes are its length times that weight.
        run_votes = run_len if weight is None else run_len * weight[starts].astype(np.int64)
        # Run colour sums from one running sum of packed colours (runs stay within a row, so
        # each channel's sum fits its bits; wrap-around of the running sum cancels out).
        running = np.cumsum(rgb_packed)
        run_packed = running[ends - 1]
        run_packed[1:] -= running[starts[1:] - 1]
        run_rgb = unpack_rgb_sums(run_packed)
        run_keys = keys[starts]
        run_instance = instance[starts]
        if run_instance.min() >= 0 and run_instance.max() < (1 << _LABEL_BITS):
            # One sort groups runs by (voxel, instance); voxels are runs of equal high bits.
            pairs, pair_of_run = np.unique(
                (run_keys << _LABEL_BITS) | run_instance, return_inverse=True
            )
            pair_of_run = pair_of_run.reshape(-1)
            pair_keys = pairs >> _LABEL_BITS
            new_voxel = np.ones(len(pairs), dtype=bool)
            new_voxel[1:] = pair_keys[1:] != pair_keys[:-1]
            voxel_of_pair = np.cumsum(new_voxel) - 1
            unique = pair_keys[new_voxel]
            inverse = voxel_of_pair[pair_of_run]
            pair_pixels = np.bincount(pair_of_run, weights=run_len, minlength=len(pairs))
            pair_votes = (
                pair_pixels
                if weight is None
                else np.bincount(pair_of_run, weights=run_votes, minlength=len(pairs))
            )
            pair_instance = (pairs & ((1 << _LABEL_BITS) - 1)).astype(np.int32)
        else:
            unique, inverse = np.unique(run_keys, return_inverse=True)
            inverse = inverse.reshape(-1)
            voxel_of_pair, pair_instance = inverse, run_instance
            pair_pixels, pair_votes = run_len, run_votes
        slots, created = self._slots_for(unique)
        n = len(unique)
        self._count.view[slots] += np.bincount(inverse, weights=run_len, minlength=n).astype(
            np.int64
        )
        for c in range(3):
            self._rgb_sum.view[slots, c] += np.bincount(inverse, weights=run_rgb[:, c], minlength=n)
        labelled = pair_instance > 0
        if np.any(labelled):
            self.instance_votes.add(
                slots[voxel_of_pair[labelled]],
                pair_instance[labelled],
                np.asarray(pair_votes[labelled], dtype=np.int64),
            )
        if category is not None:
            run_slots = slots[inverse]
            run_category = category[starts]
            known = (run_category >= 0) & (run_instance <= 0)
            if np.any(known):
                self.category_votes.add(run_slots[known], run_category[known], run_votes[known])
        pixels = np.bincount(pair_instance[labelled], weights=pair_pixels[labelled])
        seen = np.flatnonzero(pixels)
        return FrameVoxels(slots, created, {int(i): int(pixels[i]) for i in seen})

    def state(self) -> dict[str, np.ndarray]:
        return {
            "keys": self.keys.copy(),
            "rgb_sum": self.rgb_sum.copy(),
            "count": self.count.copy(),
            "instance_vote_keys": self.instance_votes.keys.copy(),
            "instance_vote_counts": self.instance_votes.counts.copy(),
            "category_vote_keys": self.category_votes.keys.copy(),
            "category_vote_counts": self.category_votes.counts.copy(),
        }

    @classmethod
    def from_state(cls, voxel_m: float, state: dict[str, np.ndarray]) -> VoxelGrid:
        grid = cls(voxel_m)
        keys = state["keys"].astype(np.int64)
        for array in (grid._keys, grid._rgb_sum, grid._count):
            array.extend(len(keys))
        grid._keys.view[:] = keys
        grid._rgb_sum.view[:] = state["rgb_sum"]
        grid._count.view[:] = state["count"]
        order = np.argsort(keys, kind="stable")
        grid._sorted_keys = keys[order]
        grid._sorted_slots = order.astype(np.int64)
        grid.instance_votes.load(state["instance_vote_keys"], state["instance_vote_counts"])
        grid.category_votes.load(state["category_vote_keys"], state["category_vote_counts"])
        return grid

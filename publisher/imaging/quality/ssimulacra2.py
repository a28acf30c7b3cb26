"""SSIMULACRA2's definition (libjxl, tools/ssimulacra2.cc): its constants, the maps that count, and
how their averages make the score."""

from __future__ import annotations

import functools

#: libjxl's weights, in its order: channel (X, Y, B), scale (0-5), norm (1, 4), map (SSIM, artifact, detail lost).
WEIGHTS = (
    0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0, 0.0004371155730107379, 0.0,
    1.1041726426657346, 0.00066284834129271, 0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0,
    1.8422455520539298, 11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
    1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072, 0.9677937080626833, 0.0,
    0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053, 0.0004550992113792063, 0.0, 0.0,
    0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
    0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296, 1.027889937768264,
    225.20515300849274, 0.0, 0.0, 19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
    176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757, 0.0004485436923833408, 0.0, 0.0, 0.0,
    34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0008680556573291698, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0004179171803251336, 0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0, 8.826982764996862,
    23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682, 0.9834382792465353, 0.0012286405048278493,
    171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0, 0.0005130064588990679, 0.0, 0.00010854057858411537,
)
#: Opsin absorbance: linear RGB -> the three cone responses (each row sums to 1), plus a bias.
OPSIN = ((0.30, 0.622, 0.078), (0.23, 0.692, 0.078),
         (0.24342268924547819, 0.20476744424496821, 1 - 0.24342268924547819 - 0.20476744424496821))
BIAS = 0.0037930732552754493
#: The reference's positive XYB: X scaled by 14, and offsets. They matter at the image's edges,
#: where the blur reads zeros left and right of the image (and mirrored rows above and below).
X_GAIN, OFFSETS = 14.0, (0.42, 0.01, 0.55)
C2 = 0.0009
SCALES = 6
SIGMA, RADIUS = 1.5, 5
NEGLIGIBLE = 0.01


def scale_count(width: int, height: int) -> int:
    """The reference's scales: it halves (rounding up) while both sides are at least 8."""
    count = 0
    while count < SCALES and min(width, height) >= 8:
        count, width, height = count + 1, (width + 1) // 2, (height + 1) // 2
    return count


def weight(scales: int, channel: int, scale: int, norm: int, kind: int) -> float:
    """With fewer than 6 scales the reference reads the weights consecutively, as libjxl does."""
    return WEIGHTS[((channel * scales + scale) * 2 + norm) * 3 + kind]


@functools.lru_cache(maxsize=SCALES + 1)
def maps(scales: int) -> list[tuple[int, int]]:
    """The (scale, channel) pairs with a weight that counts, finest scale first."""
    return [(scale, channel) for scale in range(scales) for channel in range(3)
            if any(weight(scales, channel, scale, n, k) > NEGLIGIBLE for n in range(2) for k in range(3))]


def final(averages: dict, scales: int) -> float:
    total = 0.0
    for (scale, channel), values in averages.items():
        for n in range(2):
            for k in range(3):
                total += weight(scales, channel, scale, n, k) * abs(values[n * 3 + k])
    total *= 0.9562382616834844
    total = 2.326765642916932 * total - 0.020884521182843837 * total ** 2 + 6.248496625763138e-05 * total ** 3
    return 100.0 - 10.0 * total ** 0.6276336467831387 if total > 0 else 100.0

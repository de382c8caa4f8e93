"""The P-frame neural codec: a conditional residual autoencoder with a factorised learned entropy model.

Why this architecture and not DVC's motion + residual (which GRACE builds on; docs/grace.md §Codec): it must
train in ~15 minutes on one CPU core. A first version with a deep nonlinear analysis/synthesis (4 x conv5 s2,
GDN, 1/16 latent, decoder conditioned on the reference at four scales) did not beat copying the reference on the
held-out clip after 6000 steps; optical-flow networks (SpyNet) would need still more. What trains fast and
well is a *conditional residual* autoencoder whose analysis is a learned linear block transform of the residual,
initialised to the orthonormal 4 x 4 DCT (complete: 48 coefficients per 4 x 4 RGB block, so any quality is
reachable), and whose synthesis is the learned inverse followed by a nonlinear refinement network conditioned on
the reference frame (it deblocks, and conceals latent elements lost in transit)::

     x_t - ref ──► g_a (4x4 stride-4 conv, DCT init) ──► y ──► x gain_q ──► round, clamp +-R ──► y_hat
                                                                             (M = 48 x H/4 x W/4; packets: any
                                                                              subset, missing elements = 0)
     y_hat / gain_q ──► g_s (4x4 stride-4 transposed conv, IDCT init) ──► + ref = coarse
     [coarse, ref] ──► refine (conv3, conv3 s2 (+ 1x1 conv of the loss mask), conv3, deconv, conv3 on skip;
                       last layer zero-init) ──► + coarse

The refinement also sees the loss mask (which latent elements arrived; the receiver knows it from the packet
indices and the permutation), so a codec trained with masking can tell a lost zero from a coded zero and
conceal. The no-masking baseline is decoded with an all-ones mask, exactly as it was trained.

There is no motion compensation: the decoder's refinement sees the reference, but the residual is coded
against the co-located reference pixels (x265 has quarter-pel motion search; this is most of the 0 %-loss gap).

The entropy model is not conditioned on the reference on purpose: during loss the receiver's reference differs
from the sender's until resync, and an entropy model that depended on it would make every packet undecodable.
It is a factorised prior (Ballé et al., ICLR 2017/2018 "EntropyBottleneck", as in CompressAI): one learned
non-parametric density per latent channel and rate point. Its PMFs over the symbols -R..R are frozen into integer
frequency tables (``update()``), stored in the state dict, and only those integers reach the arithmetic coder,
so encoding and decoding are bit-exact (style.md §5).

Several rate points from one network: a learned per-channel gain per rate point scales the latent before
rounding (Cui et al., "Asymmetric gained deep image compression", CVPR 2021), each with its own density.

Three faces, as CompressAI: ``forward`` (training: noisy latents, likelihoods, masked decode), and
``analyse``/``synthesise`` used by ``emu.apps.grace.codec`` for real bytes. Initialisation draws only from a
given ``torch.Generator`` (never the global torch RNG).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True, kw_only=True)
class CodecConfig:
    stride: int = 4               # block size of the analysis transform: latent at 1/stride resolution
    refine_ch: int = 24           # channels of the conditional refinement network (1/1 and 1/2 resolution)
    n_rates: int = 5              # rate points (lambdas below)
    lambdas: tuple = (0.0035, 0.0067, 0.013, 0.025, 0.0483)  # CompressAI's MSE ladder: lambda*255^2*MSE + bpp
    prior: str = "factorized"     # "factorized" (non-parametric, per channel) or "laplace" (learned scale per channel)
    symbol_range: int = 63        # R: symbols are clamped to -R..R for coding
    cdf_bits: int = 16            # integer frequency tables sum to 2**cdf_bits

    def __post_init__(self) -> None:
        for name in ("stride", "refine_ch", "n_rates", "symbol_range", "cdf_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
        if len(self.lambdas) != self.n_rates or any(not (lam > 0) for lam in self.lambdas):
            raise ValueError(f"lambdas: need {self.n_rates} positive values, got {self.lambdas!r}")
        if self.prior not in ("factorized", "laplace"):
            raise ValueError(f"prior: must be 'factorized' or 'laplace', got {self.prior!r}")
        if not 8 <= self.cdf_bits <= 24:
            raise ValueError(f"cdf_bits: must be in [8, 24], got {self.cdf_bits}")

    @property
    def latent(self) -> int:
        """M: latent channels = 3 colour channels x stride^2 transform coefficients (a complete basis)."""
        return 3 * self.stride * self.stride

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lambdas"] = list(self.lambdas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CodecConfig:
        d = dict(d)
        d["lambdas"] = tuple(d["lambdas"])
        return cls(**d)


def dct_basis(n: int) -> torch.Tensor:
    """Orthonormal 2-D DCT-II basis of n x n blocks: (n*n, n, n), row u*n+v is the (u, v) basis image."""
    k = torch.arange(n, dtype=torch.float64)
    c = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return torch.einsum("um,vn->uvmn", c, c).reshape(n * n, n, n).float()


def _conv(cin: int, cout: int, k: int = 5, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)


class FactorizedPrior(nn.Module):
    """One learned univariate density per channel (Ballé et al. 2018, appendix 6.1; CompressAI's
    EntropyBottleneck with filters (3, 3, 3)), for ``channels`` = rate points x latent channels."""

    def __init__(self, channels: int, filters: tuple = (3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = channels
        self.filters = (1,) + tuple(filters) + (1,)
        self.init_scale = init_scale
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) - 1):
            self.matrices.append(nn.Parameter(torch.empty(channels, self.filters[i + 1], self.filters[i])))
            self.biases.append(nn.Parameter(torch.empty(channels, self.filters[i + 1], 1)))
            if i < len(self.filters) - 2:
                self.factors.append(nn.Parameter(torch.empty(channels, self.filters[i + 1], 1)))

    def reset(self, gen: torch.Generator) -> None:
        scale = self.init_scale ** (1 / (len(self.filters) - 1))
        with torch.no_grad():
            for i, matrix in enumerate(self.matrices):
                matrix.fill_(math.log(math.expm1(1 / scale / self.filters[i + 1])))
                self.biases[i].uniform_(-0.5, 0.5, generator=gen)
            for factor in self.factors:
                factor.zero_()

    def logits_cdf(self, x: torch.Tensor, sl: slice) -> torch.Tensor:
        """``x``: (C', 1, N) for the channels ``sl``; returns logits of the CDF at x."""
        logits = x
        for i, matrix in enumerate(self.matrices):
            logits = torch.matmul(F.softplus(matrix[sl]), logits) + self.biases[i][sl]
            if i < len(self.factors):
                logits = logits + torch.tanh(self.factors[i][sl]) * torch.tanh(logits)
        return logits

    def likelihood(self, y: torch.Tensor, first: int) -> torch.Tensor:
        """P(y - 0.5 < Y < y + 0.5) for ``y`` (B, M, H, W) under channels ``first .. first + M``."""
        b, m, h, w = y.shape
        v = y.permute(1, 0, 2, 3).reshape(m, 1, -1)
        sl = slice(first, first + m)
        lower = self.logits_cdf(v - 0.5, sl)
        upper = self.logits_cdf(v + 0.5, sl)
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return lik.clamp_min(1e-9).reshape(m, b, h, w).permute(1, 0, 2, 3)

    @torch.no_grad()
    def pmf(self, symbol_range: int) -> torch.Tensor:
        """Probabilities of the integers -R..R per channel, the tails folded into the end symbols: (C, 2R+1)."""
        r = symbol_range
        grid = torch.arange(-r, r + 1, dtype=torch.float32)
        edges = torch.cat([grid - 0.5, grid[-1:] + 0.5])                 # 2R+2 edges
        v = edges.reshape(1, 1, -1).expand(self.channels, 1, -1).contiguous()
        cdf = torch.sigmoid(self.logits_cdf(v, slice(0, self.channels))).reshape(self.channels, -1).double()
        p = cdf[:, 1:] - cdf[:, :-1]
        p[:, 0] += cdf[:, 0]
        p[:, -1] += 1.0 - cdf[:, -1]
        return p.clamp_min(0.0)


class LaplacePrior(nn.Module):
    """Zero-mean Laplace density per channel with a learned scale: P(y) = F(y + 1/2) - F(y - 1/2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.log_scale = nn.Parameter(torch.empty(channels))

    def reset(self, gen: torch.Generator) -> None:
        with torch.no_grad():
            self.log_scale.zero_()

    @staticmethod
    def _cdf(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 0.5 + 0.5 * torch.sign(x) * (-torch.expm1(-torch.abs(x) / b))

    def likelihood(self, y: torch.Tensor, first: int) -> torch.Tensor:
        m = y.shape[1]
        b = torch.exp(self.log_scale[first:first + m]).clamp_min(0.05).view(1, -1, 1, 1)
        # Mirror to the negative side so the difference of two CDFs never cancels badly.
        a = -torch.abs(y)
        lik = self._cdf(a + 0.5, b) - self._cdf(a - 0.5, b)
        return lik.clamp_min(1e-9)

    @torch.no_grad()
    def pmf(self, symbol_range: int) -> torch.Tensor:
        r = symbol_range
        grid = torch.arange(-r, r + 1, dtype=torch.float64)
        edges = torch.cat([grid - 0.5, grid[-1:] + 0.5]).view(1, -1)
        b = torch.exp(self.log_scale.double()).clamp_min(0.05).view(-1, 1)
        cdf = self._cdf(edges, b)
        p = cdf[:, 1:] - cdf[:, :-1]
        p[:, 0] += cdf[:, 0]
        p[:, -1] += 1.0 - cdf[:, -1]
        return p.clamp_min(0.0)


def integer_frequencies(pmf: torch.Tensor, bits: int) -> torch.Tensor:
    """Quantise PMF rows to integers >= 1 that sum exactly to 2**bits (largest-remainder rounding)."""
    total = 1 << bits
    n = pmf.shape[-1]
    p = pmf / pmf.sum(-1, keepdim=True)
    raw = p * (total - n)
    freq = torch.floor(raw).long() + 1
    short = total - freq.sum(-1)                                         # >= 0 by construction
    order = torch.argsort(raw - torch.floor(raw), dim=-1, descending=True, stable=True)
    add = (torch.arange(n).unsqueeze(0) < short.unsqueeze(-1)).long()
    freq.scatter_add_(-1, order, add)
    return freq.to(torch.int32)


class GraceCodec(nn.Module):
    """Conditional residual P-frame codec with ``n_rates`` rate points (see the module docstring)."""

    def __init__(self, config: CodecConfig = CodecConfig()) -> None:
        super().__init__()
        self.config = c = config
        m, n, k = c.latent, c.refine_ch, c.stride
        self.g_a = nn.Conv2d(3, m, k, stride=k, bias=False)              # block transform of x - ref
        self.g_s = nn.ConvTranspose2d(m, 3, k, stride=k, bias=False)     # its inverse
        self.r_in = _conv(6, n, 3)                                        # refinement, conditioned on ref
        self.r_down = _conv(n, 2 * n, 3, 2)
        self.r_mid = _conv(2 * n, 2 * n, 3)
        self.r_mask = nn.Conv2d(m, 2 * n, 1)                             # which latent elements arrived
        self.r_up = _deconv(2 * n, n, 3)
        self.r_out = _conv(2 * n, 3, 3)
        self.log_gain_enc = nn.Parameter(torch.empty(c.n_rates, m))
        self.log_gain_dec = nn.Parameter(torch.empty(c.n_rates, m))
        self.prior = FactorizedPrior(c.n_rates * m) if c.prior == "factorized" else LaplacePrior(c.n_rates * m)
        a = 2 * c.symbol_range + 1
        self.register_buffer("freq", torch.zeros(c.n_rates, m, a, dtype=torch.int32))

    # -- initialisation -----------------------------------------------------------------------------------------

    @classmethod
    def create(cls, config: CodecConfig, gen: torch.Generator) -> GraceCodec:
        """A freshly initialised codec; all draws from ``gen``."""
        with torch.device("meta"):
            model = cls(config)
        model = model.to_empty(device="cpu")
        model.reset(gen)
        return model

    def reset(self, gen: torch.Generator) -> None:
        c = self.config
        with torch.no_grad():
            for mod in (self.r_in, self.r_down, self.r_mid, self.r_up, self.r_out, self.r_mask):
                fan_in = mod.weight[0].numel() if isinstance(mod, nn.Conv2d) else \
                    mod.weight.shape[0] * mod.weight[0, 0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                mod.weight.uniform_(-math.sqrt(3.0) * bound, math.sqrt(3.0) * bound, generator=gen)
                mod.bias.uniform_(-bound, bound, generator=gen)
            # The transforms start as the orthonormal DCT of each colour channel and its inverse.
            basis = dct_basis(c.stride)
            s2 = c.stride * c.stride
            self.g_a.weight.zero_()
            self.g_s.weight.zero_()
            for ch in range(3):
                self.g_a.weight[ch * s2:(ch + 1) * s2, ch] = basis
                self.g_s.weight[ch * s2:(ch + 1) * s2, ch] = basis
            # Rate points: gains 1.5 .. 10 on the DC coefficients (quantiser steps 1/1.5 .. 1/10 of the pixel
            # range), geometric, and JPEG-like coarser steps for higher frequencies: gain / (1 + (u + v) / 2).
            q = torch.arange(c.n_rates, dtype=torch.float32)
            gains = torch.exp(math.log(1.5) + q * (math.log(10.0 / 1.5) / max(1, c.n_rates - 1)))
            uv = torch.arange(c.stride, dtype=torch.float32)
            freq_w = (1.0 / (1.0 + (uv[:, None] + uv[None, :]) / 2.0)).reshape(-1).repeat(3)
            self.log_gain_enc.copy_(torch.log(gains[:, None] * freq_w[None, :]))
            self.log_gain_dec.copy_(-self.log_gain_enc)
            # The refinement starts as the identity (output layer zero) and blind to the mask.
            for mod in (self.r_out, self.r_mask):
                mod.weight.zero_()
                mod.bias.zero_()
            self.prior.reset(gen)
            self.freq.zero_()

    # -- transforms ---------------------------------------------------------------------------------------------

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        k = self.config.stride
        return (self.config.latent, height // k, width // k)

    def analyse(self, x: torch.Tensor, ref: torch.Tensor, q: int) -> torch.Tensor:
        """Scaled (unrounded) latent of frame ``x`` given ``ref``, both (B, 3, H, W) in [0, 1]."""
        return self.g_a(x - ref) * torch.exp(self.log_gain_enc[q]).view(1, -1, 1, 1)

    def synthesise(self, y_hat: torch.Tensor, ref: torch.Tensor, q: int,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction from the (possibly partly zero-filled) integer latent ``y_hat`` and ``ref``.

        ``mask`` (same shape as ``y_hat``, 1 = element received, 0 = lost and zero-filled; None = all received)
        tells the refinement which zeros are losses: the receiver knows it from the packets it has."""
        coarse = ref + self.g_s(y_hat * torch.exp(self.log_gain_dec[q]).view(1, -1, 1, 1))
        h0 = F.leaky_relu(self.r_in(torch.cat([coarse, ref], 1)), 0.1)
        h = self.r_down(h0)
        if mask is None:
            mask = torch.ones_like(y_hat)
        h = h + F.interpolate(self.r_mask(mask), scale_factor=self.config.stride // 2, mode="nearest")
        h = F.leaky_relu(h, 0.1)
        h = F.leaky_relu(self.r_mid(h), 0.1)
        h = F.leaky_relu(self.r_up(h), 0.1)
        return coarse + self.r_out(torch.cat([h, h0], 1))

    def forward(self, x: torch.Tensor, ref: torch.Tensor, q: int, drop_p: torch.Tensor | None,
                gen: torch.Generator) -> dict:
        """Training pass: returns ``x_hat`` (decoded from the latent with elements dropped i.i.d. with
        probability ``drop_p[b]`` per sample, zero-filled) and ``bits`` (per sample, of the full latent)."""
        y = self.analyse(x, ref, q)
        noise = torch.rand(y.shape, generator=gen) - 0.5
        lik = self.prior.likelihood(y + noise, q * self.config.latent)
        bits = -torch.log2(lik).flatten(1).sum(1)
        r = float(self.config.symbol_range)
        y_hat = y + (torch.round(y).clamp(-r, r) - y).detach()          # straight-through rounding
        keep = None
        if drop_p is not None:
            keep = (torch.rand(y.shape, generator=gen) >= drop_p.view(-1, 1, 1, 1)).to(y.dtype)
            y_hat = y_hat * keep
        return {"x_hat": self.synthesise(y_hat, ref, q, keep), "bits": bits}

    # -- integer tables -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def update(self) -> None:
        """Freeze the learned densities into the integer tables ``freq`` (rate point, channel, symbol)."""
        c = self.config
        pmf = self.prior.pmf(c.symbol_range)
        self.freq.copy_(integer_frequencies(pmf, c.cdf_bits).view(c.n_rates, c.latent, -1))

    def check_tables(self) -> None:
        total = 1 << self.config.cdf_bits
        sums = self.freq.sum(-1)
        if not bool((sums == total).all()) or bool((self.freq <= 0).any()):
            raise ValueError("codec: uninitialised integer frequency tables; run update() first")

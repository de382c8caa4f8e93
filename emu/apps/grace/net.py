"""The P-frame neural codec: a conditional residual autoencoder with a factorised learned entropy model.

Why this architecture (and not DVC's motion + residual, which GRACE builds on; docs/grace.md §Codec): the model
must train in ~20 minutes on two CPU cores. Optical-flow networks (SpyNet) need far more data and steps to learn
useful motion; at 128 x 128 with the clips' small motions, a decoder that sees the reference frame at four scales
(1/1, 1/2, 1/4, 1/8) can shift and blend it locally (receptive field > +-16 px at 1/8), which is what motion
compensation buys. So the codec is *conditional residual* coding (as in DCVC, Li et al. NeurIPS 2021, without
its temporal entropy prior): the encoder sees the current frame, the reference and their difference; the decoder
sees the latent and the reference and outputs the reference plus a correction::

     x_t, ref ──► g_a (4 x conv5 s2, GDN) ──► y ──► x gain_q ──► round, clamp +-R ──► y_hat (M x H/16 x W/16)
                                                                                    │ (packets: any subset;
                                                                                    │  missing elements = 0)
     ref ──► f (3 x conv3 s2) ──► ref features at 1/2, 1/4, 1/8 ─────────┐           ▼
                                                                        g_s(y_hat / gain_q, ref features)
                                                                        ──► ref + correction = x_hat_t

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
    hidden: int = 32              # channels of the analysis/synthesis transforms
    latent: int = 48              # M: latent channels (at 1/16 resolution)
    ref_ch: tuple = (16, 32, 32)  # reference-feature channels at 1/2, 1/4, 1/8
    n_rates: int = 5              # rate points (lambdas below)
    lambdas: tuple = (0.0018, 0.0035, 0.0067, 0.013, 0.025)  # CompressAI's MSE ladder (loss = lambda*255^2*MSE + bpp)
    prior: str = "factorized"     # "factorized" (non-parametric, per channel) or "laplace" (learned scale per channel)
    symbol_range: int = 20        # R: symbols are clamped to -R..R for coding
    cdf_bits: int = 16            # integer frequency tables sum to 2**cdf_bits

    def __post_init__(self) -> None:
        for name in ("hidden", "latent", "n_rates", "symbol_range", "cdf_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
        if len(self.lambdas) != self.n_rates or any(not (lam > 0) for lam in self.lambdas):
            raise ValueError(f"lambdas: need {self.n_rates} positive values, got {self.lambdas!r}")
        if self.prior not in ("factorized", "laplace"):
            raise ValueError(f"prior: must be 'factorized' or 'laplace', got {self.prior!r}")
        if len(self.ref_ch) != 3:
            raise ValueError(f"ref_ch: need 3 channel counts, got {self.ref_ch!r}")
        if not 8 <= self.cdf_bits <= 24:
            raise ValueError(f"cdf_bits: must be in [8, 24], got {self.cdf_bits}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ref_ch"] = list(self.ref_ch)
        d["lambdas"] = list(self.lambdas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CodecConfig":
        d = dict(d)
        d["ref_ch"] = tuple(d["ref_ch"])
        d["lambdas"] = tuple(d["lambdas"])
        return cls(**d)


class GDN(nn.Module):
    """Generalised divisive normalisation (Ballé et al., ICLR 2016): y = x / sqrt(beta + gamma * x^2);
    ``inverse=True`` multiplies instead (IGDN). Parameters are kept positive by squaring (simplified
    reparametrisation)."""

    def __init__(self, ch: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.empty(ch))
        self.gamma = nn.Parameter(torch.empty(ch, ch))

    def reset(self) -> None:
        with torch.no_grad():
            self.beta.fill_(1.0)
            self.gamma.copy_(math.sqrt(0.1) * torch.eye(self.gamma.shape[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.beta * self.beta + 1e-6
        gamma = self.gamma * self.gamma
        norm = torch.sqrt(F.conv2d(x * x, gamma[:, :, None, None], beta))
        return x * norm if self.inverse else x / norm


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
        n, m = c.hidden, c.latent
        r1, r2, r3 = c.ref_ch
        self.g_a = nn.Sequential(
            _conv(9, n, 5, 2), GDN(n), _conv(n, n, 5, 2), GDN(n), _conv(n, n, 5, 2), GDN(n), _conv(n, m, 5, 2))
        self.f1 = _conv(3, r1, 3, 2)
        self.f2 = _conv(r1, r2, 3, 2)
        self.f3 = _conv(r2, r3, 3, 2)
        self.up8 = nn.Sequential(_deconv(m, n), GDN(n, inverse=True))
        self.mix8 = _conv(n + r3, n, 3)
        self.up4 = nn.Sequential(_deconv(n, n), GDN(n, inverse=True))
        self.mix4 = _conv(n + r2, n, 3)
        self.up2 = nn.Sequential(_deconv(n, r1, 3), GDN(r1, inverse=True))
        self.mix2 = _conv(2 * r1, r1, 3)
        self.to_full = _conv(r1, 12, 3)                                   # pixel shuffle x2 -> 3 channels
        self.refine = nn.Sequential(_conv(6, 16, 3), nn.LeakyReLU(0.1), _conv(16, 3, 3))
        self.log_gain_enc = nn.Parameter(torch.empty(c.n_rates, m))
        self.log_gain_dec = nn.Parameter(torch.empty(c.n_rates, m))
        self.prior = FactorizedPrior(c.n_rates * m) if c.prior == "factorized" else LaplacePrior(c.n_rates * m)
        a = 2 * c.symbol_range + 1
        self.register_buffer("freq", torch.zeros(c.n_rates, m, a, dtype=torch.int32))

    # -- initialisation -----------------------------------------------------------------------------------------

    @classmethod
    def create(cls, config: CodecConfig, gen: torch.Generator) -> "GraceCodec":
        """A freshly initialised codec; all draws from ``gen``."""
        with torch.device("meta"):
            model = cls(config)
        model = model.to_empty(device="cpu")
        model.reset(gen)
        return model

    def reset(self, gen: torch.Generator) -> None:
        with torch.no_grad():
            for mod in self.modules():
                if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
                    fan_in = mod.weight[0].numel() if isinstance(mod, nn.Conv2d) else \
                        mod.weight.shape[0] * mod.weight[0, 0].numel()
                    bound = 1.0 / math.sqrt(fan_in)
                    mod.weight.uniform_(-math.sqrt(3.0) * bound, math.sqrt(3.0) * bound, generator=gen)
                    mod.bias.uniform_(-bound, bound, generator=gen)
                elif isinstance(mod, GDN):
                    mod.reset()
            q = torch.arange(self.config.n_rates, dtype=torch.float32) - (self.config.n_rates - 1) / 2
            self.log_gain_enc.copy_((0.75 * math.log(2) * q).unsqueeze(1).expand_as(self.log_gain_enc))
            self.log_gain_dec.copy_(-self.log_gain_enc)
            # Start as "copy the reference": the correction paths output zero until they learn something.
            for last in (self.to_full, self.refine[-1]):
                last.weight.zero_()
                last.bias.zero_()
            self.prior.reset(gen)
            self.freq.zero_()

    # -- transforms ---------------------------------------------------------------------------------------------

    def analyse(self, x: torch.Tensor, ref: torch.Tensor, q: int) -> torch.Tensor:
        """Scaled (unrounded) latent of frame ``x`` given ``ref``, both (B, 3, H, W) in [0, 1]."""
        y = self.g_a(torch.cat([x, ref, x - ref], dim=1))
        return y * torch.exp(self.log_gain_enc[q]).view(1, -1, 1, 1)

    def synthesise(self, y_hat: torch.Tensor, ref: torch.Tensor, q: int) -> torch.Tensor:
        """Reconstruction from the (possibly partly zero-filled) integer latent ``y_hat`` and ``ref``."""
        y = y_hat * torch.exp(self.log_gain_dec[q]).view(1, -1, 1, 1)
        r1 = F.leaky_relu(self.f1(ref), 0.1)
        r2 = F.leaky_relu(self.f2(r1), 0.1)
        r3 = F.leaky_relu(self.f3(r2), 0.1)
        h = self.up8(y)
        h = F.leaky_relu(self.mix8(torch.cat([h, r3], 1)), 0.1)
        h = self.up4(h)
        h = F.leaky_relu(self.mix4(torch.cat([h, r2], 1)), 0.1)
        h = self.up2(h)
        h = F.leaky_relu(self.mix2(torch.cat([h, r1], 1)), 0.1)
        coarse = ref + F.pixel_shuffle(self.to_full(h), 2)
        return coarse + self.refine(torch.cat([coarse, ref], 1))

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
        if drop_p is not None:
            keep = (torch.rand(y.shape, generator=gen) >= drop_p.view(-1, 1, 1, 1)).to(y.dtype)
            y_hat = y_hat * keep
        return {"x_hat": self.synthesise(y_hat, ref, q), "bits": bits}

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

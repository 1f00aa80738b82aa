"""What the portal's routes share: its runtime, the components its setup builds, and the
folder of its page templates (drawn by :mod:`services.portal.api.render`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends

from services.portal.oidc import OidcClient, OidcConfig
from shared.clock import Clock
from shared.service import ServiceRuntime, components_of, runtime_of

Runtime = Annotated[ServiceRuntime, Depends(runtime_of("portal"))]
TEMPLATES = Path(__file__).resolve().parent / "api" / "templates"


@dataclass(frozen=True)
class PortalComponents:
    """What the portal's setup builds, kept on the runtime."""

    clock: Clock
    # the sign-in's identity provider (refuses to build in production without https)
    oidc: OidcClient

    @classmethod
    def build(cls, rt: ServiceRuntime) -> PortalComponents:
        return cls(clock=Clock(), oidc=OidcClient(OidcConfig.from_settings(rt.settings)))


async def components(rt: Runtime) -> PortalComponents:
    return components_of(rt, PortalComponents)


Components = Annotated[PortalComponents, Depends(components)]

"""The SLOs section of the status page: figures, highlighting, absence and public mode."""

from __future__ import annotations

from actors.clock import FixedClock
from actors.state import HealthState
from actors.web.app import create_app
from actors.web.statusconfig import StatusPageConfig
from actors.web.statuspage import PageSources, SloLine

PAGE_WINDOWS = ("5m", "30m", "1h", "6h")
TICKET_WINDOWS = ("2h", "6h", "1d", "3d")

SLOS = (
    SloLine(
        name="checkout-availability",
        objective=0.999,
        sli=0.9995,
        budget_remaining=0.5,
        page_burn=tuple(zip(PAGE_WINDOWS, (0.5, 0.25, None, 1.0), strict=True)),
        ticket_burn=tuple(zip(TICKET_WINDOWS, (0.5, 1.0, 0.75, 0.5), strict=True)),
    ),
    SloLine(
        name="login-latency",
        objective=0.99,
        sli=0.95,
        budget_remaining=-4.0,
        page_burn=tuple(zip(PAGE_WINDOWS, (20.0, 16.0, 15.0, 6.5), strict=True)),
        ticket_burn=tuple(zip(TICKET_WINDOWS, (15.0, 6.5, 5.0, 5.0), strict=True)),
        paging=True,
    ),
)


async def _page(slos: tuple[SloLine, ...], *, public: bool = False) -> str:
    clock = FixedClock()
    state = HealthState(checks={"api": False}, clock=clock)
    app = create_app(
        health=state,
        clock=clock,
        status_page=StatusPageConfig(public=public),
        sources=PageSources(slos=lambda _now: slos),
    )
    response = await app.test_client().get("/")
    assert response.status_code == 200
    page: str = await response.get_data(as_text=True)
    return page


def _row(page: str, name: str) -> str:
    start = page.rindex("<tr", 0, page.index(f'data-slo="{name}"'))
    return page[start : page.index("</tr>", start)]


async def test_the_slos_section_shows_each_slos_figures() -> None:
    page = await _page(SLOS)
    assert "<h2>SLOs</h2>" in page
    healthy = _row(page, "checkout-availability")
    assert "99.90%" in healthy  # objective
    assert "99.95%" in healthy  # SLI
    assert "50.00%" in healthy  # error budget remaining
    assert 'aria-label="50.00% left"' in healthy
    assert 'width="50.0"' in healthy
    for window, rate in zip(PAGE_WINDOWS, ("0.50", "0.25", "-", "1.00"), strict=True):
        assert f"{window} {rate}</div>" in healthy
    assert "paging" not in healthy
    burning = _row(page, "login-latency")
    assert 'class="slo paging spent"' in burning
    assert "95.00%" in burning
    assert "-400.00%" in burning
    assert 'width="0.0"' in burning
    for window, rate in zip(TICKET_WINDOWS, ("15.00", "6.50", "5.00", "5.00"), strict=True):
        assert f"{window} {rate}</div>" in burning
    assert page.index("<h2>SLOs</h2>") < page.index("<h2>Alerts</h2>")


async def test_no_slos_section_without_slos() -> None:
    page = await _page(())
    assert "SLOs" not in page
    assert "data-slo=" not in page


async def test_public_mode_shows_only_name_objective_and_whether_budget_is_left() -> None:
    page = await _page(SLOS, public=True)
    assert "<h2>SLOs</h2>" in page
    healthy = _row(page, "checkout-availability")
    assert "<td>99.90%</td><td>left</td>" in healthy
    burning = _row(page, "login-latency")
    assert "<td>99.00%</td><td>spent</td>" in burning
    for hidden in ("99.95%", "95.00%", "50.00%", "400.00%", "paging", "burn", "<svg"):
        assert hidden not in _row(page, "checkout-availability") + burning
    assert "Burn rate" not in page

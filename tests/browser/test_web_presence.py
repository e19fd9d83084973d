"""Presence in an agent's inbox (Chinese interface): five leads who were online before they
wrote show online from the inbox's first render, after a reload too, without opening any
conversation; it stays live as leads come and go; while the agent's own connection is down
everyone shows as unknown, never online, and the truth is back once it reconnects."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.support.peers import new_user, token_for

DOTS = """() => Object.fromEntries([...document.querySelectorAll('#inbox-list li.inbox-item')]
  .map((li) => [li.querySelector('.inbox-title').textContent,
                li.querySelector('.dot')?.dataset.presence || 'none']))"""


def open_lead(new_page, url: str, lead) -> Page:
    """A lead's page, signed in by a token link; connected."""
    page = new_page()
    page.goto(f"{url}/#token={token_for(lead)}")
    expect(page.locator("#my-id")).to_have_text(lead.id)
    expect(page.locator("#status")).to_be_hidden()
    return page


def dot(page: Page, name: str):
    return page.locator("#inbox-list li.inbox-item", has_text=name).locator(".dot")


def test_agent_inbox_shows_leads_presence_at_once_live_and_unknown_offline(
    new_page, web_server, shot
) -> None:
    agent = new_page()
    agent_id = sign_in(agent, web_server, "Wang Agent", "agent", "zh")
    leads = [
        new_user("buyer", lang, f"Lead {n} {lang}")
        for n, lang in enumerate("en es ko en es".split())
    ]
    pages = [open_lead(new_page, web_server, lead) for lead in leads]
    # Each lead writes to the agent (they were online before sharing a conversation with them).
    for page in pages:
        page.locator("#new-participants").fill(agent_id)
        page.locator("#new-submit").click()
        expect(page.locator("#conv-title")).to_have_text("Wang Agent")
    names = [lead.name for lead in leads]
    items = agent.locator("#inbox-list li.inbox-item")
    expect(items).to_have_count(5)
    for name in names:
        expect(dot(agent, name)).to_have_attribute("data-presence", "online")
    assert agent.evaluate("tradetalk.conversation.id") is None  # none was opened

    # A reload: the first render of the inbox already shows all five online.
    agent.reload()
    agent.wait_for_function(
        "() => document.querySelectorAll('#inbox-list li.inbox-item').length === 5"
    )
    assert agent.evaluate(DOTS) == dict.fromkeys(names, "online")
    expect(dot(agent, names[0])).to_have_attribute("title", "在线")
    shot(agent, "agent-inbox-five-online-zh")

    # Live: a lead leaves and comes back.
    pages[0].close()
    expect(dot(agent, names[0])).to_have_attribute("data-presence", "offline")
    expect(dot(agent, names[0])).to_have_attribute("title", "离线")
    pages[0] = open_lead(new_page, web_server, leads[0])
    expect(dot(agent, names[0])).to_have_attribute("data-presence", "online")

    # The agent's connection drops: nobody shows online, in the inbox or the open conversation.
    agent.locator("#inbox-list li.inbox-item", has_text=names[1]).locator("a").click()
    expect(agent.locator("#conv-presence li")).to_have_attribute("data-presence", "online")
    agent.context.set_offline(True)
    agent.evaluate("window.tradetalk.connection.socket.io.engine.close()")
    expect(agent.locator("#status")).to_be_visible()
    for name in names:
        expect(dot(agent, name)).to_have_attribute("data-presence", "unknown")
        expect(dot(agent, name)).to_have_attribute("aria-label", "状态未知")
    expect(agent.locator("#conv-presence li")).to_have_attribute("data-presence", "unknown")
    expect(agent.locator("#conv-presence")).to_contain_text("状态未知")
    expect(agent.locator("#inbox-list .dot.on")).to_have_count(0)
    shot(agent, "agent-offline-presence-unknown-zh")

    # Meanwhile a lead leaves; back online, the agent sees who is there now.
    pages[2].close()
    agent.context.set_offline(False)
    expect(agent.locator("#status")).to_be_hidden(timeout=15000)
    expect(dot(agent, names[2])).to_have_attribute("data-presence", "offline")
    for name in (names[0], names[1], names[3], names[4]):
        expect(dot(agent, name)).to_have_attribute("data-presence", "online")
    expect(agent.locator("#conv-presence li")).to_have_attribute("data-presence", "online")
    shot(agent, "agent-back-online-zh")
    for page in (agent, *[p for p in pages if not p.is_closed()]):
        assert not page.errors, page.errors

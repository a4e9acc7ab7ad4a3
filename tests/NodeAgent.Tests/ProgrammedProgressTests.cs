using ControlPlane.NodeAgent.Sync;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>The agent's programmed position: pure logic, driven as WatchSync drives it.</summary>
public sealed class ProgrammedProgressTests
{
    private const ProgrammedProgress.Consumer Overlay = ProgrammedProgress.Consumer.Overlay;
    private const ProgrammedProgress.Consumer Table = ProgrammedProgress.Consumer.Table;

    private static ProgrammedProgress Listed(out long overlay, out long table)
    {
        var progress = new ProgrammedProgress();
        progress.Applied();
        progress.Concerns(Overlay);
        progress.Concerns(Table);
        progress.Step("t1");
        overlay = progress.Take(Overlay);
        table = progress.Take(Table);
        return progress;
    }

    [Fact]
    public void Nothing_is_programmed_until_both_consumers_passed_the_list()
    {
        var progress = Listed(out var overlay, out var table);
        Assert.Null(progress.Programmed);
        Assert.False(progress.Done(Overlay, overlay, programmed: true));
        Assert.Null(progress.Programmed);
        Assert.True(progress.Done(Table, table, programmed: true));
        Assert.Equal("t1", progress.Programmed);
    }

    [Fact]
    public void A_change_that_concerns_nobody_and_a_bookmark_move_the_position_at_once()
    {
        var progress = Listed(out var overlay, out var table);
        progress.Done(Overlay, overlay, true);
        progress.Done(Table, table, true);
        Assert.True(progress.Step("bookmark"));
        Assert.Equal("bookmark", progress.Programmed);
    }

    [Fact]
    public void A_change_waits_for_the_consumer_it_concerns_even_if_that_consumer_took_the_view_before_its_token_came()
    {
        var progress = Listed(out var overlay, out var table);
        progress.Done(Overlay, overlay, true);
        progress.Done(Table, table, true);
        // The event is applied and the table worker takes the view before the token arrives.
        progress.Applied();
        progress.Concerns(Table);
        var taken = progress.Take(Table);
        Assert.False(progress.Step("t2"));
        Assert.Equal("t1", progress.Programmed);
        Assert.True(progress.Done(Table, taken, true));
        Assert.Equal("t2", progress.Programmed);
    }

    [Fact]
    public void A_failed_pass_keeps_the_position_until_a_later_pass_succeeds()
    {
        var progress = Listed(out var overlay, out var table);
        progress.Done(Overlay, overlay, true);
        progress.Done(Table, table, true);
        progress.Applied();
        progress.Concerns(Overlay);
        progress.Step("t2");
        var first = progress.Take(Overlay);
        Assert.False(progress.Done(Overlay, first, programmed: false));
        // Meanwhile a bookmark: still held at t1, since the overlay owes t2.
        progress.Step("t3");
        Assert.Equal("t1", progress.Programmed);
        var second = progress.Take(Overlay);
        Assert.True(progress.Done(Overlay, second, programmed: true));
        Assert.Equal("t3", progress.Programmed);
    }

    [Fact]
    public void A_new_list_starts_over()
    {
        var progress = Listed(out var overlay, out var table);
        progress.Done(Overlay, overlay, true);
        progress.Done(Table, table, true);
        progress.Reset();
        progress.Applied();
        progress.Concerns(Overlay);
        progress.Concerns(Table);
        progress.Step("relisted");
        Assert.Null(progress.Programmed);
        // A pass that took the view before the relist does not cover it.
        Assert.False(progress.Done(Overlay, overlay, true));
        progress.Done(Overlay, progress.Take(Overlay), true);
        progress.Done(Table, progress.Take(Table), true);
        Assert.Equal("relisted", progress.Programmed);
    }
}

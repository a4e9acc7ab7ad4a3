using ControlPlane.Silo.Api;
using Grpc.Core;
using Orleans.Runtime;

namespace ControlPlane.Silo.Tests;

/// <summary>How failures inside the silo become statuses (pure logic: no silo needed).</summary>
public sealed class StatusMappingTests
{
    [Fact]
    public void RuntimeCancellation_WhileTheCallerWaits_IsUnavailable_NotUnknown()
    {
        // What Orleans throws when a call's message expires before placement completes (seen
        // while membership changes): the call never ran, so the caller may retry elsewhere.
        var expired = new OperationCanceledException("Message expired before placement could complete for grain Endpoint/a/b.");
        var status = StatusMapping.Classify(expired, callCancelled: false);
        Assert.Equal(StatusCode.Unavailable, status?.StatusCode);
        Assert.Contains("placement", status?.Detail);
    }

    [Fact]
    public void CallersOwnCancellation_IsLeftToGrpc()
    {
        Assert.Null(StatusMapping.Classify(new OperationCanceledException(), callCancelled: true));
        Assert.Null(StatusMapping.Classify(new InvalidOperationException("a bug"), callCancelled: false));
    }

    [Fact]
    public void UnreachableGrain_IsUnavailable_AndEchoedTextIsBounded()
    {
        var status = StatusMapping.Classify(new SiloUnavailableException(new string('x', 70_000)));
        Assert.Equal(StatusCode.Unavailable, status?.StatusCode);
        Assert.True(status!.Value.Detail.Length <= StatusMapping.MaxMessage + 1);
    }
}

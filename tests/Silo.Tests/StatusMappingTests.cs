using ControlPlane.Silo.Api;
using ControlPlane.Silo.Security;
using Grpc.Core;
using Orleans.Runtime;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// Which status a grain call that failed in flight gives: a write whose grain's silo went away (or
/// did not answer in time) may have been made, so it is UNKNOWN, which neither clients nor the
/// failover invoker retry blindly; a read, or a call the runtime refused, stays UNAVAILABLE.
/// </summary>
public sealed class StatusMappingTests
{
    public static TheoryData<Exception> InFlight() => new(new SiloUnavailableException("The target silo became unavailable"), new TimeoutException("Response did not arrive on time"));

    [Theory]
    [MemberData(nameof(InFlight))]
    public void AWriteLostInFlight_IsUnknown_AReadUnavailable(Exception lost)
    {
        var write = StatusMapping.Classify(lost, write: !AccessRules.IsRead("/controlplane.v1.Endpoints/Create"))!.Value;
        Assert.Equal(StatusCode.Unknown, write.StatusCode);
        Assert.Contains("may have been made; read the object", write.Detail);
        // Said as what happened: a timeout is a grain that did not answer, not one that went away.
        Assert.Contains(lost is TimeoutException ? "did not answer in time" : "went away during the call", write.Detail);
        var read = StatusMapping.Classify(lost, write: !AccessRules.IsRead("/controlplane.v1.Endpoints/Get"))!.Value;
        Assert.Equal(StatusCode.Unavailable, read.StatusCode);
    }

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

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void UnreachableGrain_EchoedTextIsBounded(bool write)
    {
        var status = StatusMapping.Classify(new SiloUnavailableException(new string('x', 70_000)), write: write);
        Assert.Equal(write ? StatusCode.Unknown : StatusCode.Unavailable, status?.StatusCode);
        Assert.True(status!.Value.Detail.Length <= StatusMapping.MaxMessage + 1);
    }

    /// <summary>Orleans puts inner exceptions, stack traces and all, into some messages: a client gets their first line only.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void UnreachableGrain_TheRuntimesStackTraceStaysInTheSilo(bool write)
    {
        var message = "Exception while sending message: Orleans.Runtime.Messaging.ConnectionFailedException: Unable to connect to endpoint S127.0.0.1:7521:1\n"
            + "   at Orleans.Runtime.Messaging.ConnectionManager.GetConnectionAsync(SiloAddress endpoint) in /_/src/Orleans.Core/Networking/ConnectionManager.cs:line 142\r\n"
            + "   at Orleans.Runtime.Messaging.OutboundMessageQueue.SendMessage(Message msg)";
        Exception failure = write ? new SiloUnavailableException(message) : new TimeoutException(message);
        var status = StatusMapping.Classify(failure, write: write)!.Value;
        Assert.Contains("Unable to connect to endpoint S127.0.0.1:7521:1", status.Detail);
        Assert.DoesNotContain("   at ", status.Detail);
        Assert.DoesNotContain("\n", status.Detail);
    }

    [Fact]
    public void ARejectedWrite_NeverRan_AndStaysUnavailable()
    {
        var rejected = StatusMapping.Classify(new OperationCanceledException("message expired before placement could complete"), write: true)!.Value;
        Assert.Equal(StatusCode.Unavailable, rejected.StatusCode);
    }

    [Theory]
    [InlineData("/controlplane.v1.Watch/Watch", true)]
    [InlineData("/controlplane.v1.Namespaces/List", true)]
    [InlineData("/controlplane.v1.Nodes/Heartbeat", false)]
    [InlineData("/controlplane.v1.Networks/Delete", false)]
    [InlineData("/controlplane.v1.Nothing/Such", false)]
    public void Reads_AreThoseTheAccessRulesCallReads(string method, bool read) => Assert.Equal(read, AccessRules.IsRead(method));
}

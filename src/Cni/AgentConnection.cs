using ControlPlane.Contracts.Attachments;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Files;
using Grpc.Core;
using Grpc.Net.Client;
using System.Net.Sockets;

namespace ControlPlane.Cni;

/// <summary>
/// The node agent's attach API on its unix socket. Failures become CNI errors by status code:
/// an agent that cannot be reached, an agent that cannot reach the control plane, or a call that
/// timed out or raced, or whose connection failed whatever status the client gave it, is "try
/// again later" (11);
/// a refusal is 100 + its gRPC code (<see cref="CniCodes.Refused"/>), its text in the details.
/// A connection that failed says what failed on the socket (<see cref="ConnectFailure"/>), not the
/// HTTP client's text, which names the channel's placeholder address (localhost:80).
/// </summary>
public sealed class AgentConnection(string socket) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly GrpcChannel _channel = ControlPlaneChannel.ForUnixSocket(socket);

    public string Socket { get; } = socket;

    public Task<AttachResponse> AttachAsync(AttachRequest request) => CallAsync(c => c.AttachAsync(request, Calls.Within(Timeout)), "attach");

    public Task<DetachResponse> DetachAsync(DetachRequest request) => CallAsync(c => c.DetachAsync(request, Calls.Within(Timeout)), "detach");

    public Task<ListAttachmentsResponse> ListAsync(ListAttachmentsRequest request) => CallAsync(c => c.ListAsync(request, Calls.Within(Timeout)), "list attachments");

    /// <summary>
    /// The endpoint attached on this node for the container and interface of <paramref name="identity"/>
    /// through the network configuration <paramref name="configuration"/> (its name), or null.
    /// </summary>
    public async Task<Endpoint?> AttachedAsync(EndpointIdentity identity, string configuration)
    {
        var found = await ListAsync(new ListAttachmentsRequest
        {
            Namespace = identity.Namespace,
            Labels = { [AttachmentLabels.Attachment] = identity.AttachmentKey, [AttachmentLabels.CniNetwork] = configuration },
        });
        return found.Endpoints.FirstOrDefault(e => e.Metadata.Name == identity.Name);
    }

    public Task<AgentStatusResponse> StatusAsync(AgentStatusRequest request) => CallAsync(c => c.StatusAsync(request, Calls.Within(Timeout)), "status");

    private async Task<T> CallAsync<T>(Func<Agent.AgentClient, AsyncUnaryCall<T>> call, string what)
    {
        if (FileType.Of(Socket) == FileKind.Missing)
            throw new CniException(CniCodes.TryAgainLater, $"{what}: the node agent is not running", $"agent socket {Socket}: {FileType.Describe(FileKind.Missing)}");
        try
        {
            return await call(new Agent.AgentClient(_channel));
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && e.Status.DebugException is null && e.Status.Detail.Length > 0)
        {
            // The agent answered: it is up, and says what it could not reach (the control plane).
            throw new CniException(CniCodes.TryAgainLater, $"{what}: {e.Status.Detail}", $"the node agent at {Socket} answered UNAVAILABLE");
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unknown && e.Status.DebugException is null)
        {
            // The control plane could not tell whether the write was made (its silo went away
            // during the call); ADD and DEL are idempotent per container, so a retry settles it.
            throw new CniException(CniCodes.TryAgainLater, $"{what}: the outcome is unknown; try again", e.Status.Detail);
        }
        catch (RpcException e) when (e.Status.DebugException is not null || e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Aborted)
        {
            // A status the client made up (it carries the exception behind it) is no answer from
            // the agent: a connection that broke or a hung agent that missed its keep-alive pings.
            throw new CniException(CniCodes.TryAgainLater, $"{what}: the node agent is unavailable ({e.StatusCode})", $"agent socket {Socket}: {ConnectFailure(e)}");
        }
        catch (RpcException e)
        {
            throw new CniException(CniCodes.Refused(e.StatusCode), $"{what} refused ({e.StatusCode})", e.Status.Detail);
        }
    }

    /// <summary>
    /// What failed, from the exception the client recorded: a connect that failed (a
    /// <see cref="SocketException"/> behind it) by its error code and what the path is; anything
    /// else (a connection that broke, a keep-alive that timed out) by the innermost exception.
    /// </summary>
    private string ConnectFailure(RpcException e)
    {
        if (e.Status.DebugException is not { } cause) return e.Status.Detail;
        if (Calls.SocketErrorOf(e) is { } socket)
        {
            // connect(2) refuses a path that is not a socket with ECONNREFUSED too: the path tells them apart.
            var kind = FileType.Of(Socket);
            if (kind != FileKind.Socket) return FileType.Describe(kind);
            return socket.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused (no agent listens on it)",
                SocketError.AccessDenied => "permission denied",
                SocketError.TimedOut => "connection timed out",
                var code => $"connect failed ({code})",
            };
        }
        while (cause.InnerException is not null) cause = cause.InnerException;
        return cause.Message;
    }

    public void Dispose() => _channel.Dispose();
}

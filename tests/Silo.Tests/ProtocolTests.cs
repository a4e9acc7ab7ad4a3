using System.Net;
using System.Net.Http.Headers;
using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.V1;
using Google.Protobuf;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>Malformed traffic at the gRPC layer, sent byte by byte over real HTTP/2.</summary>
public sealed class ProtocolTests
{
    private static async Task<(int Status, string Message)> SendRawAsync(Uri address, string path, byte[] body, bool compressedFlag = false, string? timeout = null)
    {
        using var http = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(address, path))
        {
            Content = new ByteArrayContent(body),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (compressedFlag) request.Headers.TryAddWithoutValidation("grpc-encoding", "gzip");
        if (timeout is not null) request.Headers.TryAddWithoutValidation("grpc-timeout", timeout);
        using var response = await http.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
        var headers = response.TrailingHeaders.Contains("grpc-status") ? (HttpHeaders)response.TrailingHeaders : response.Headers;
        var status = int.Parse(headers.GetValues("grpc-status").Single());
        var message = headers.TryGetValues("grpc-message", out var m) ? GrpcProtocol.DecodeMessage(m.Single()) : "";
        return (status, message);
    }

    private static byte[] Frame(byte[] payload, byte flag = 0)
    {
        var frame = new byte[5 + payload.Length];
        GrpcProtocol.WritePrefix(frame, payload.Length);
        frame[0] = flag;
        payload.CopyTo(frame, 5);
        return frame;
    }

    public static TheoryData<string, string, byte[], StatusCode> BadCalls => new()
    {
        { "malformed protobuf", "/controlplane.v1.Namespaces/Create", Frame([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]), StatusCode.InvalidArgument },
        { "wrong wire type", "/controlplane.v1.Namespaces/Create", Frame([0x0F, 0x01, 0x02]), StatusCode.InvalidArgument },
        { "truncated frame", "/controlplane.v1.Namespaces/Create", Frame(Namespace("x").ToByteArray())[..^2], StatusCode.InvalidArgument },
        { "no message", "/controlplane.v1.Namespaces/Create", [], StatusCode.Internal },
        { "compressed flag", "/controlplane.v1.Namespaces/Create", Frame(Namespace("x").ToByteArray(), flag: 1), StatusCode.Unimplemented },
        { "unknown method", "/controlplane.v1.Namespaces/Explode", Frame([]), StatusCode.Unimplemented },
        { "unknown service", "/nope.v1.Nothing/Get", Frame([]), StatusCode.Unimplemented },
        { "oversized message", "/controlplane.v1.Namespaces/Create", Frame(new Namespace { Metadata = new ObjectMeta { Name = "big", Labels = { ["k"] = new string('v', 100_000) } } }.ToByteArray()), StatusCode.ResourceExhausted },
    };

    [Theory]
    [MemberData(nameof(BadCalls))]
    public async Task BadCall_GetsTheRightStatus_AndTheSiloKeepsServingUnchanged(string _, string path, byte[] body, StatusCode expected)
    {
        await using var silo = await SiloInstance.StartAsync("--Silo:MaxReceiveMessageSize=65536");
        await silo.Client.Namespaces.CreateAsync(Namespace("stable"));
        var before = await PositionAsync(silo.Client);

        var (status, message) = await SendRawAsync(silo.Address, path, body);

        Assert.Equal((int)expected, status);
        Assert.NotEmpty(message);
        Assert.Equal(before, await PositionAsync(silo.Client));
        Assert.Equal("stable", (await silo.Client.Namespaces.GetAsync("", "stable")).Metadata.Name);
    }

    [Fact]
    public async Task UnsupportedEncodingOrMalformedTimeout_IsRefused()
    {
        await using var silo = await SiloInstance.StartAsync();
        var body = Frame(new GetRequest { Name = "x" }.ToByteArray());

        Assert.Equal((int)StatusCode.Unimplemented, (await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Get", body, compressedFlag: true)).Status);
        var (status, message) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Get", body, timeout: "soon");
        Assert.Equal((int)StatusCode.InvalidArgument, status);
        Assert.Contains("grpc-timeout", message);
    }

    [Fact]
    public async Task Deadline_OnAStream_EndsItWithDeadlineExceeded()
    {
        await using var silo = await SiloInstance.StartAsync();
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in silo.Client.WatchAsync(new WatchRequest(), new CallOptions(TimeSpan.FromMilliseconds(300)))) { }
        });
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
    }
}

using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Google.Protobuf;
using Grpc.Core;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>Malformed and unusual traffic at the gRPC layer, sent byte by byte over real HTTP/2.</summary>
public sealed class ProtocolTests
{
    private static async Task<(HttpStatusCode Http, int? Status, string Message, bool Classified)> SendRawAsync(Uri address, string path, byte[] body,
        string? encoding = null, string? timeout = null, string contentType = "application/grpc", string method = "POST")
    {
        using var http = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var request = new HttpRequestMessage(new HttpMethod(method), new Uri(address, path))
        {
            Content = new ByteArrayContent(body),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (encoding is not null) request.Headers.TryAddWithoutValidation("grpc-encoding", encoding);
        if (timeout is not null) request.Headers.TryAddWithoutValidation("grpc-timeout", timeout);
        using var response = await http.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
        var headers = response.TrailingHeaders.Contains("grpc-status") ? (HttpHeaders)response.TrailingHeaders : response.Headers;
        int? status = headers.TryGetValues("grpc-status", out var s) ? int.Parse(s.Single()) : null;
        var message = headers.TryGetValues("grpc-message", out var m) ? Uri.UnescapeDataString(m.Single()) : "";
        return (response.StatusCode, status, message, headers.Contains(Calls.ClassifiedTrailer));
    }

    private static byte[] Frame(byte[] payload, byte flag = 0)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(frame, 5);
        return frame;
    }

    private static byte[] Gzip(byte[] payload)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest)) gzip.Write(payload);
        return output.ToArray();
    }

    public static TheoryData<string, string, byte[], StatusCode> BadCalls => new()
    {
        { "malformed protobuf", "/controlplane.v1.Namespaces/Create", Frame([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]), StatusCode.InvalidArgument },
        { "wrong wire type", "/controlplane.v1.Namespaces/Create", Frame([0x0F, 0x01, 0x02]), StatusCode.InvalidArgument },
        { "truncated frame", "/controlplane.v1.Namespaces/Create", Frame(Namespace("x").ToByteArray())[..^2], StatusCode.Internal },
        { "no message", "/controlplane.v1.Namespaces/Create", [], StatusCode.Internal },
        { "compressed flag without an encoding", "/controlplane.v1.Namespaces/Create", Frame(Namespace("x").ToByteArray(), flag: 1), StatusCode.Internal },
        { "length of 2^32 - 1", "/controlplane.v1.Namespaces/Create", [0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x02], StatusCode.ResourceExhausted },
        { "length of 2^31", "/controlplane.v1.Namespaces/Create", [0x00, 0x80, 0x00, 0x00, 0x00, 0x01, 0x02], StatusCode.ResourceExhausted },
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

        var (_, status, message, classified) = await SendRawAsync(silo.Address, path, body);

        Assert.Equal((int)expected, status);
        Assert.NotEmpty(message);
        // The server chose it (before any interceptor ran): marked so, like every status it chooses.
        Assert.True(classified, $"no {Calls.ClassifiedTrailer} on {expected}");
        Assert.Equal(before, await PositionAsync(silo.Client));
        Assert.Equal("stable", (await silo.Client.Namespaces.GetAsync("", "stable")).Metadata.Name);
    }

    /// <summary>
    /// A request over Silo:MaxReceiveMessageSize is told its length and the limit, and the
    /// setting that sets it (Grpc.AspNetCore's own answer named neither); a compressed one over
    /// the limit once decompressed is refused too.
    /// </summary>
    [Fact]
    public async Task AnOversizedRequest_IsToldItsLengthAndTheLimit()
    {
        await using var silo = await SiloInstance.StartAsync("--Silo:MaxReceiveMessageSize=65536");
        var before = await PositionAsync(silo.Client);
        var big = new Namespace { Metadata = new ObjectMeta { Name = "big", Labels = { ["k"] = new string('v', 100_000) } } }.ToByteArray();

        var (_, status, message, classified) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(big));
        Assert.Equal((int)StatusCode.ResourceExhausted, status);
        Assert.True(classified);
        Assert.Equal($"the request message is {big.Length} bytes; this server receives at most 65536 (Silo:MaxReceiveMessageSize)", message);

        (_, status, _, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(Gzip(big), flag: 1), encoding: "gzip");
        Assert.Equal((int)StatusCode.ResourceExhausted, status);
        Assert.Equal(before, await PositionAsync(silo.Client));
    }

    /// <summary>
    /// A field whose wire type does not exist (6 or 7), unknown or known, at the top or nested, makes
    /// the request not a valid message: INVALID_ARGUMENT saying so, and nothing is written (a
    /// parser that skips unknown fields unread would let the rest of a valid message through).
    /// </summary>
    [Fact]
    public async Task FieldsOfAWireTypeThatDoesNotExist_MakeTheRequestInvalid_AndChangeNothing()
    {
        await using var silo = await SiloInstance.StartAsync();
        var before = await PositionAsync(silo.Client);
        var valid = Namespace("wire-seven").ToByteArray();
        var name = "nested"u8.ToArray();
        byte[][] bodies =
        [
            [.. valid, 0x17],                   // field 2, wire type 7, after a valid message
            [.. valid, 0x16, 0x1F],             // field 2, wire type 6; field 3, wire type 7
            [0x0F],                             // field 1 (metadata), wire type 7
            [0x0E],                             // field 1, wire type 6
            [0xFF, 0xFF, 0xFF, 0xFF, 0x0F],     // the highest field number, wire type 7
            [0x0A, (byte)(name.Length + 3), 0x0A, (byte)name.Length, .. name, 0x1F], // inside metadata: field 3, wire type 7
        ];

        foreach (var body in bodies)
        {
            var (_, status, message, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(body));
            Assert.True(status == (int)StatusCode.InvalidArgument && message.StartsWith("the request is not a valid controlplane.v1.Namespace message", StringComparison.Ordinal),
                $"{Convert.ToHexString(body)}: status {status} {message}");
        }
        Assert.Equal(before, await PositionAsync(silo.Client));
        // The valid message alone is taken.
        Assert.Equal(0, (await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(valid))).Status);
    }

    /// <summary>
    /// Frames the server cannot read whole are refused and change nothing: gzip cut anywhere or
    /// with bytes after its end (a cut-off DeleteRequest would otherwise lose its etag and run
    /// unconditionally), a compressed flag other than 0 or 1, method names that are not exactly a
    /// method's, and a grpc-timeout of zero in any unit.
    /// </summary>
    [Fact]
    public async Task BrokenOrInexactFrames_AreRefused_AndChangeNothing()
    {
        await using var silo = await SiloInstance.StartAsync();
        var kept = await silo.Client.Namespaces.CreateAsync(Namespace("kept"));
        var before = await PositionAsync(silo.Client);
        var delete = Gzip(new DeleteRequest { Name = "kept", Etag = "999" }.ToByteArray());

        for (var cut = delete.Length - 1; cut > 0; cut--)
        {
            var (_, status, message, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Delete", Frame(delete[..cut], flag: 1), encoding: "gzip");
            Assert.True(status == (int)StatusCode.Internal, $"gzip cut to {cut} of {delete.Length} bytes: status {status} {message}");
        }
        var garbage = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Delete", Frame([.. delete, 1, 2, 3], flag: 1), encoding: "gzip");
        Assert.Equal((int)StatusCode.Internal, garbage.Status);
        Assert.Contains("gzip", garbage.Message);
        // Whole, it is read: the wrong etag is what refuses it.
        Assert.Equal((int)StatusCode.Aborted, (await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Delete", Frame(delete, flag: 1), encoding: "gzip")).Status);

        var create = Namespace("never").ToByteArray();
        foreach (var flag in new byte[] { 2, 0x80 })
        {
            var (_, status, message, classified) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(create, flag));
            Assert.True(status == (int)StatusCode.Internal && message.Contains("compressed flag", StringComparison.Ordinal) && classified, $"flag {flag}: status {status} {message}");
        }
        foreach (var path in new[] { "/CONTROLPLANE.V1.NAMESPACES/CREATE", "/controlplane.v1.Namespaces/create", "/controlplane.v1.Namespaces/Create/", "/controlplane.v1.Namespaces/Create?x=1" })
        {
            var (_, status, message, _) = await SendRawAsync(silo.Address, path, Frame(create));
            Assert.True(status == (int)StatusCode.Unimplemented, $"{path}: status {status} {message}");
        }
        foreach (var timeout in new[] { "0S", "0m", "0u", "0M", "0H", "00000000S", "0n" })
        {
            var (_, status, message, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(create), timeout: timeout);
            Assert.True(status == (int)StatusCode.DeadlineExceeded, $"grpc-timeout {timeout}: status {status} {message}");
        }

        Assert.Equal(before, await PositionAsync(silo.Client));
        Assert.Equal(kept.Metadata.Etag, (await silo.Client.Namespaces.GetAsync("", "kept")).Metadata.Etag);
        Assert.Equal((int)StatusCode.OK, (await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(create))).Status);
    }

    [Fact]
    public async Task GzipCompressedRequests_AreServed_AndAnUnknownEncodingIsRefused()
    {
        await using var silo = await SiloInstance.StartAsync();
        var create = Frame(Gzip(Namespace("zipped").ToByteArray()), flag: 1);

        var (http, status, _, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", create, encoding: "gzip");

        Assert.Equal((HttpStatusCode.OK, (int)StatusCode.OK), (http, status));
        Assert.Equal("zipped", (await silo.Client.Namespaces.GetAsync("", "zipped")).Metadata.Name);
        var refused = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", create, encoding: "snappy");
        Assert.Equal((int)StatusCode.Unimplemented, refused.Status);
    }

    [Fact]
    public async Task FieldsTheServerDoesNotKnow_AreDropped_NotStored()
    {
        await using var silo = await SiloInstance.StartAsync();
        // Field 99 (length-delimited) is in neither Namespace nor ObjectMeta: a newer client's field.
        static byte[] Unknown(string value) => [0x9A, 0x06, (byte)value.Length, .. System.Text.Encoding.ASCII.GetBytes(value)];
        byte[] meta = [.. new ObjectMeta { Name = "newer" }.ToByteArray(), .. Unknown("smuggled-in-meta")];
        byte[] body = [0x0A, (byte)meta.Length, .. meta, .. Unknown("smuggled-on-top")];

        var (http, status, message, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(body));

        Assert.Equal((HttpStatusCode.OK, (int)StatusCode.OK), (http, status));
        // The answer, a Get and a new watcher's list carry only fields the server knows.
        var stored = await silo.Client.Namespaces.GetAsync("", "newer");
        Assert.Equal("newer", stored.Metadata.Name);
        var bytes = System.Text.Encoding.ASCII.GetString(stored.ToByteArray());
        Assert.DoesNotContain("smuggled", bytes);
        var listed = await silo.Client.Namespaces.ListAsync(new ListRequest());
        Assert.DoesNotContain("smuggled", System.Text.Encoding.ASCII.GetString(listed.ToByteArray()));
    }

    [Fact]
    public async Task ACorruptGzipMessage_OrAMalformedTimeout_IsInternal_AndAnExpiredTimeout_DeadlineExceeded_ChangingNothing()
    {
        await using var silo = await SiloInstance.StartAsync();
        await silo.Client.Namespaces.CreateAsync(Namespace("stable"));
        var before = await PositionAsync(silo.Client);

        byte[] notGzip = [0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xDE, 0xAD, 0xBE, 0xEF];
        var (_, status, message, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(notGzip, flag: 1), encoding: "gzip");
        Assert.Equal((int)StatusCode.Internal, status);
        Assert.Contains("gzip", message);

        foreach (var timeout in new[] { "1n", "99n", "1u" })
        {
            (_, status, message, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(Namespace("late").ToByteArray()), timeout: timeout);
            Assert.True(status == (int)StatusCode.DeadlineExceeded, $"grpc-timeout {timeout}: status {status} {message}");
        }
        // Not a timeout (more than 8 digits, no unit, another unit): refused, not run without a deadline.
        foreach (var timeout in new[] { "abc", "123456789S", "5", "5x", "-1S" })
        {
            (_, status, message, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(Namespace("late").ToByteArray()), timeout: timeout);
            Assert.True(status == (int)StatusCode.Internal && message.StartsWith("grpc-timeout:", StringComparison.Ordinal), $"grpc-timeout {timeout}: status {status} {message}");
        }
        await Assert.ThrowsAsync<RpcException>(() => silo.Client.Namespaces.GetAsync("", "late"));
        Assert.Equal(before, await PositionAsync(silo.Client));
        // A good gzip message still works.
        var (_, ok, _, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(Gzip(Namespace("zipped").ToByteArray()), flag: 1), encoding: "gzip");
        Assert.Equal((int)StatusCode.OK, ok);
    }

    [Fact]
    public async Task AnEightDigitTimeout_IsAccepted()
    {
        await using var silo = await SiloInstance.StartAsync();
        foreach (var timeout in new[] { "99999999H", "99999999S", "99999999n", "1H" })
        {
            var (http, status, message, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(Namespace("t" + timeout.Length + timeout[^1].ToString().ToLowerInvariant() + (timeout[0] == '1' ? "x" : "")).ToByteArray()), timeout: timeout);
            Assert.True(http == HttpStatusCode.OK && status == (int)StatusCode.OK, $"grpc-timeout {timeout}: HTTP {(int)http}, status {status} {message}");
        }
    }

    [Fact]
    public async Task ANonGrpcContentType_Gets415()
    {
        await using var silo = await SiloInstance.StartAsync();

        var (http, status, _, classified) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(Namespace("x").ToByteArray()), contentType: "application/json");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, http);
        // A status the server chose, so marked as every other one is.
        Assert.Equal((int)StatusCode.Internal, status);
        Assert.True(classified, $"no {Calls.ClassifiedTrailer} on the 415");
    }

    /// <summary>A gRPC call is a POST: another method is HTTP 405 with INTERNAL naming it, as grpc-go answers, and runs nothing.</summary>
    [Theory]
    [InlineData("GET")]
    [InlineData("PUT")]
    public async Task AMethodOtherThanPost_Is405_AndRunsNothing(string method)
    {
        await using var silo = await SiloInstance.StartAsync();

        var (http, status, message, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(Namespace("by-" + method.ToLowerInvariant()).ToByteArray()), method: method);

        Assert.Equal((HttpStatusCode.MethodNotAllowed, (int)StatusCode.Internal), (http, status));
        Assert.Contains(method, message);
        await Assert.ThrowsAsync<RpcException>(() => silo.Client.Namespaces.GetAsync("", "by-" + method.ToLowerInvariant()));
    }

    /// <summary>Only protobuf is spoken: another codec subtype is refused by name, not read as protobuf.</summary>
    [Fact]
    public async Task AContentTypeOfAnotherCodec_IsUnimplemented_AndProtoIsServed()
    {
        await using var silo = await SiloInstance.StartAsync();

        var (http, status, message, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(Namespace("json").ToByteArray()), contentType: "application/grpc+json");
        Assert.Equal((HttpStatusCode.OK, (int)StatusCode.Unimplemented), (http, status));
        Assert.Contains("application/grpc+json", message);
        await Assert.ThrowsAsync<RpcException>(() => silo.Client.Namespaces.GetAsync("", "json"));

        (http, status, message, _) = await SendRawAsync(silo.Address, "/controlplane.v1.Namespaces/Create", Frame(Namespace("proto").ToByteArray()), contentType: "application/grpc+proto");
        Assert.True((http, status) == (HttpStatusCode.OK, (int)StatusCode.OK), $"HTTP {(int)http}, status {status} {message}");
        Assert.Equal("proto", (await silo.Client.Namespaces.GetAsync("", "proto")).Metadata.Name);
    }

    [Fact]
    public async Task AnErrorEchoingAHugeName_IsBounded_AndTheClientsConnectionKeepsWorking()
    {
        await using var silo = await SiloInstance.StartAsync();
        var huge = new string('x', 70_000);

        var error = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Namespaces.CreateAsync(Namespace(huge), Calls.Within(TimeSpan.FromSeconds(10))));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("metadata.name", error.Status.Detail);
        Assert.True(error.Status.Detail.Length < 2000, $"the message is {error.Status.Detail.Length} characters");
        var update = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Namespaces.GetAsync("", huge, Calls.Within(TimeSpan.FromSeconds(10))));
        Assert.Equal(StatusCode.InvalidArgument, update.StatusCode);

        // The same channel (one HTTP/2 connection) still answers at once.
        await silo.Client.Namespaces.CreateAsync(Namespace("after"), Calls.Within(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Deadline_OnAStream_EndsItWithDeadlineExceeded()
    {
        await using var silo = await SiloInstance.StartAsync();
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in silo.Client.WatchAsync(new WatchRequest(), Calls.Within(TimeSpan.FromMilliseconds(300)))) { }
        });
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
    }
}

import Foundation
import VitqDistributed

/// The ROUTER routing id of each peer the coordinator can address, and the ``PeerID`` it
/// goes by (the id in hex). A peer is known from its first message until it is dropped.
struct PeerRoutes {
    private var ids: [PeerID: Data] = [:]

    /// The peer that sent a message with routing id `id` (remembered for replies).
    mutating func peer(routingID id: Data) -> PeerID {
        let peer = PeerID(id.map { String(format: "%02x", $0) }.joined())
        if ids[peer] == nil { ids[peer] = id }
        return peer
    }

    /// The routing id to send to `peer`, if it is known.
    func routingID(_ peer: PeerID) -> Data? { ids[peer] }

    /// Forgets `peer` (dropped: a later message makes it a new peer).
    mutating func forget(_ peer: PeerID) { ids[peer] = nil }
}

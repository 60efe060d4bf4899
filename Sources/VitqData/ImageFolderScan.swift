import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which entries of an ImageFolder tree are images, following torchvision's `ImageFolder`:
///
/// - classes are the root's subdirectories (links to directories count), sorted by code point;
/// - a class's images are found recursively, in torchvision's order (`make_dataset` walks
///   `sorted(os.walk(class_dir, followlinks=True))`: directories by full path, then file names
///   sorted, both by code point);
/// - an entry is an image candidate when its name ends, case-insensitively, in one of
///   torchvision's `IMG_EXTENSIONS`; other files are skipped, as torchvision skips them;
/// - a class folder without any image is refused, as torchvision refuses it.
///
/// Where vitq differs, it refuses with one line rather than crash, hang or loop:
///
/// - names starting with "." are skipped (editor and OS metadata such as `.ipynb_checkpoints`);
/// - a directory is walked once: a link that leads back to a directory already walked (a loop,
///   such as a link to `..`, or a second link to the same folder) is refused, naming both paths;
/// - a candidate must be a regular file (links to regular files are followed): a FIFO, socket,
///   device or dangling link is refused, and opening never blocks (`RegularFile`);
/// - a candidate must be JPEG or PNG by content (vitq decodes no other format; torchvision
///   would also read .bmp, .ppm, .pgm, .tif, .tiff, .webp files).
enum ImageFolderScan {
    /// torchvision.datasets.folder.IMG_EXTENSIONS.
    static let imageExtensions = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"]

    /// Whether torchvision would take a file named `name` as an image.
    static func hasImageExtension(_ name: String) -> Bool {
        let lower = name.lowercased()
        return imageExtensions.contains { lower.hasSuffix($0) }
    }

    /// Python's sort order for `str`: by code point, which is UTF-8 byte order.
    static func codePointOrder(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    struct DirectoryID: Hashable { let device: UInt64; let inode: UInt64 }

    /// The walk of one tree: remembers every directory walked so that none is walked twice.
    struct Walk {
        private var walked: [DirectoryID: String] = [:]

        /// Starts a walk at `root` (a directory, else an error naming it).
        init(root: String) throws {
            var st = stat()
            guard stat(root, &st) == 0 else {
                throw DataError.badDataset(path: root, detail: "cannot open: " + String(cString: strerror(errno)))
            }
            guard st.st_mode & S_IFMT == S_IFDIR else { throw DataError.badDataset(path: root, detail: "not a directory") }
            walked[Self.id(st)] = root
        }

        static func id(_ st: stat) -> DirectoryID { DirectoryID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino)) }

        static func list(_ dir: String) throws -> [String] {
            do {
                return try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted(by: codePointOrder)
            } catch {
                throw DataError.badDataset(path: dir, detail: "cannot list the directory")
            }
        }

        /// Records directory `path` (stat `st`) as walked, or refuses it if it was walked already.
        mutating func enter(_ path: String, _ st: stat) throws {
            let key = Self.id(st)
            if let first = walked[key] {
                throw DataError.badDataset(path: path, detail: "leads to \(first), which is already walked (a link loop or a second link to the same folder)")
            }
            walked[key] = path
        }

        /// The class folders under `root`: its subdirectories, sorted by code point.
        mutating func classes(root: String) throws -> [String] {
            var out: [String] = []
            for name in try Self.list(root) {
                var st = stat()
                guard stat(root + "/" + name, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { continue }
                try enter(root + "/" + name, st)
                out.append(name)
            }
            return out
        }

        /// The image candidates under class folder `dir`, in torchvision's order.
        mutating func images(in dir: String) throws -> [String] {
            var groups: [(dir: String, files: [String])] = []
            var pending = [dir]
            while let d = pending.popLast() {
                var files: [String] = []
                for name in try Self.list(d) {
                    let p = d + "/" + name
                    var st = stat()
                    guard stat(p, &st) == 0 else {
                        if hasImageExtension(name) {
                            throw DataError.unreadableImage(path: p, detail: "cannot open: " + String(cString: strerror(errno)))
                        }
                        continue
                    }
                    if st.st_mode & S_IFMT == S_IFDIR {
                        try enter(p, st)
                        pending.append(p)
                    } else if hasImageExtension(name) {
                        files.append(p)
                    }
                }
                groups.append((d, files))
            }
            groups.sort { codePointOrder($0.dir, $1.dir) }
            return groups.flatMap { $0.files }
        }
    }

    /// Checks that candidate `path` is a regular JPEG or PNG file (never blocking on a FIFO).
    static func checkCandidate(_ path: String) throws {
        let head = try RegularFile.read(path, prefix: 8)
        guard ImageDecoder.sniff(head) != nil else {
            throw DataError.unreadableImage(path: path, detail: "not a JPEG or PNG file (vitq decodes JPEG and PNG only)")
        }
    }
}

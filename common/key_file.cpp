#include "common/key_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace coapfleet::common {

bool owner_only_file(const std::string& path, std::string& error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error = "cannot read the key file " + path + ": " + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    error = "the key file " + path + " is not a regular file";
    return false;
  }
  if ((st.st_mode & 077) != 0) {
    error = "the key file " + path + " may be read or written by others (chmod 600 " + path
            + ")";
    return false;
  }
  return true;
}

bool read_key_file(const std::string& path, std::string& key, std::string& error) {
  if (!owner_only_file(path, error))
    return false;
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    error = "the key file " + path + " is empty";
    return false;
  }
  auto first = line.find_first_not_of(" \t\r\n");
  auto last = line.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) {
    error = "the key file " + path + " is empty";
    return false;
  }
  key = line.substr(first, last - first + 1);
  return true;
}

}  // namespace coapfleet::common
